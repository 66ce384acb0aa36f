"""Stage 2: split paragraphs into short spoken segments.

Segments are sentences; a sentence longer than ``max_chars`` is split at the
clause boundary nearest its middle (semicolon, colon, dash, comma), and failing
that between words, until every piece fits. Abbreviations, decimal numbers,
initials and ellipses followed by lower case do not end a sentence. Emoji and
other pictographs are dropped from the spoken text (voices would read out
their names); a segment left with nothing speakable is dropped.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["split_sentences", "split_long", "speakable", "segment_paragraph"]

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "eg", "ie",
    "a.m", "p.m", "am", "pm", "no", "vol", "fig", "approx", "ca", "cf", "inc", "ltd", "co", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "ave",
}
_CLOSERS = "\"'”’»)]"
# A sentence ends at . ! ? … (or runs of them), optional closing quotes, then space.
_END = re.compile(r"([.!?…]+|[。！？]+)([" + re.escape(_CLOSERS) + r"」』]*)(\s*)")
_CLAUSE = re.compile(r"(?<=[;:,])\s+|\s*[—–]\s*|\s+-\s+")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences, keeping abbreviations and numbers whole."""
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(text):
        end = match.end(2)
        following = text[match.end() : match.end() + 1]
        if not following:
            continue
        punct = match.group(1)
        if not match.group(3) and punct[0] not in "。！？":
            continue  # "3.5", "U.S.A": no space, no sentence end
        word = text[start : match.start(1)].split()[-1:] or [""]
        token = word[0].lower().lstrip("(\"'“‘")
        if punct == ".":
            if token in _ABBREVIATIONS or re.fullmatch(r"[a-z]", token) or re.fullmatch(r"(?:[a-z]\.)+[a-z]", token):
                continue
        if following.islower():
            continue  # "“Really?” she asked", "late… and", "e.g. this": one sentence
        sentences.append(text[start:end].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


def split_long(sentence: str, max_chars: int) -> list[str]:
    """Split a sentence at clause boundaries (or between words) until each piece fits."""
    if len(sentence) <= max_chars:
        return [sentence]
    middle = len(sentence) / 2
    cuts = [(m.start(), m.end()) for m in _CLAUSE.finditer(sentence) if 0 < m.start() < len(sentence) - 1]
    if not cuts:
        cuts = [(m.start(), m.end()) for m in re.finditer(r"\s+", sentence)]
    if not cuts:  # one enormous word: nothing sensible to do but keep it
        return [sentence]
    start, end = min(cuts, key=lambda c: abs(c[0] - middle))
    left, right = sentence[:start].strip(), sentence[end:].strip()
    if not left or not right:
        return [sentence]
    return split_long(left, max_chars) + split_long(right, max_chars)


def speakable(text: str) -> str:
    """The text with emoji and pictographs removed and spaces tidied; '' if nothing is left to say."""
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("So", "Cs", "Co", "Cn") or ch in "\ufe0f\u200d":
            continue
        kept.append(ch)
    cleaned = " ".join("".join(kept).split())
    if not any(unicodedata.category(ch)[0] in "LN" for ch in cleaned):
        return ""
    return cleaned


def segment_paragraph(text: str, *, max_chars: int) -> list[list[str]]:
    """Sentences of a paragraph, each as its list of clause pieces (all speakable)."""
    result = []
    for sentence in split_sentences(text):
        pieces = [p for p in (speakable(piece) for piece in split_long(sentence, max_chars)) if p]
        if pieces:
            result.append(pieces)
    return result
