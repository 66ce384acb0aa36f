"""Pronunciation: a lexicon of words and how the voice should say them.

An entry maps a word or phrase to a **respelling** (plain letters, ``MET-tah``:
every engine reads it) or to **phonemes** in IPA between slashes
(``/mˈɛtə/``: the engines that take phonemes say exactly these), or both.
Entries come from a TOML file's ``[lexicon]`` table (``--lexicon FILE``, or
the soundscape preset the render plays), the script's front matter (a
``lexicon:`` block) and inline fixes in the text (``{Metta|MET-tah}``, see
``meditation.script``). On the same word the nearer source wins: inline over
front matter over ``--lexicon`` over the preset.

Matching is whole-word and case-aware: an entry written in lower case matches
the word in any case (``metta`` matches "Metta" and "METTA"); an entry with a
capital matches only that spelling (``Bell``, a name, leaves "bell" alone).
Longer entries win over shorter ones, and what an entry puts in is never
matched again, so a lexicon cannot loop; an entry whose respelling contains a
word the lexicon changes back into it is refused all the same (it says the
author meant something else).

The lexicon changes only what the engine is given: captions, chapters and
timings keep the words as written. What each engine receives:

========  ===============================  ==========================
engine    phonemes given                   respelling given
========  ===============================  ==========================
piper     ``[[ mˈɛtə ]]`` (eSpeak NG IPA)   the respelling, lower case
hibari    ``[Metta](/mˈɛtə/)`` (misaki)     the respelling, lower case
pyttsx3   (none: takes the respelling)      the respelling, lower case
========  ===============================  ==========================

Respellings reach the engine in lower case: capitals mark stress for the
reader, but eSpeak (behind Piper and pyttsx3) spells out a capitalised
syllable such as ``PAH`` letter by letter.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import SettingsError
from .files import read_input
from .tomlfile import MAX_TOML_BYTES, read_toml

__all__ = [
    "Entry",
    "Lexicon",
    "read_lexicon",
    "lexicon_entries",
    "script_lexicon",
    "parse_form",
    "IPA_SYMBOLS",
]

# The IPA eSpeak NG writes (the symbols Piper's voices have ids for), with its
# stress and length marks; a phoneme outside it is a typing mistake.
IPA_SYMBOLS = frozenset(
    "abcdefhijklmnopqrstuvwxyzæçðøħŋœɐɑɒɓɔɕɖɗɘəɚɛɜɞɟɠɡɢɣɤɥɦɧɨɪɫɬɭɮɯɰɱɲɳɴɵɶɸɹɺɻɽɾʀʁʂʃʄʈʉʊʋʌʍ"
    "ʎʏʐʑʒʔʕʘʙʛʜʝʟʡʢʰʲˈˌːˑ˞ˤ̧̩̪̯̃βθχᵻⱱ "
)
# A respelling: letters (any script), and the marks that join or split syllables.
_RESPELLING = re.compile(r"[^\W\d_]+(?:[-' ][^\W\d_]+)*")
_WORD_CHARS = r"[^\W_]"


@dataclass(frozen=True)
class Entry:
    """One word or phrase and how to say it."""

    word: str
    """The text to find, as written (whole words; see the module docstring for case)."""
    say: str = ""
    """A respelling in plain letters (``MET-tah``); empty when only phonemes are given."""
    ipa: str = ""
    """Phonemes in IPA without the slashes (``mˈɛtə``); empty when only a respelling is given."""
    where: str = ""
    """``file:line`` (or ``file:line:col``) the entry came from, for messages."""

    @property
    def exact_case(self) -> bool:
        """True when the entry matches only as capitalised (it has a capital letter)."""
        return any(c.isupper() for c in self.word)


def parse_form(word: str, form: str, where: str) -> Entry:
    """An entry from ``word`` and one written form: ``/ipa/`` or a respelling; refuses a bad one."""
    word, form = word.strip(), form.strip()
    if not word or not any(c.isalnum() for c in word):
        raise SettingsError(f"{where}: lexicon entry has no word to match")
    if not form:
        raise SettingsError(f"{where}: lexicon entry {word!r} says nothing (empty)")
    if form.startswith("/"):
        if len(form) < 3 or not form.endswith("/"):
            raise SettingsError(
                f"{where}: lexicon entry {word!r}: write phonemes between slashes, e.g. /mˈɛtə/"
            )
        return _checked(Entry(word, ipa=form[1:-1].strip(), where=where))
    return _checked(Entry(word, say=form, where=where))


def _checked(entry: Entry) -> Entry:
    where, word = entry.where, entry.word
    if entry.ipa:
        unknown = sorted({c for c in entry.ipa if c not in IPA_SYMBOLS})
        if unknown:
            shown = " ".join(repr(c) for c in unknown)
            raise SettingsError(
                f"{where}: lexicon entry {word!r}: unknown phonemes {shown} in /{entry.ipa}/ "
                "(write eSpeak NG IPA, e.g. /mˈɛtə/)"
            )
    elif entry.ipa == "" and entry.say == "":
        raise SettingsError(f"{where}: lexicon entry {word!r} says nothing (empty)")
    if entry.say and not _RESPELLING.fullmatch(entry.say):
        raise SettingsError(
            f"{where}: lexicon entry {word!r}: respell with letters, hyphens and spaces "
            f"(got {entry.say!r}); give phonemes as /…/"
        )
    return entry


class Lexicon:
    """Entries in force for one render, and the text each engine is given."""

    def __init__(self, entries: Iterable[Entry] = ()):
        chosen: dict[str, Entry] = {}
        for entry in entries:  # later sources win (the script's own over the file's)
            chosen[entry.word if entry.exact_case else entry.word.lower()] = entry
        self.entries: tuple[Entry, ...] = tuple(
            sorted(chosen.values(), key=lambda e: (-len(e.word), e.word))
        )
        self._exact = {e.word: e for e in self.entries if e.exact_case}
        self._folded = {e.word.lower(): e for e in self.entries if not e.exact_case}
        self._pattern = _pattern(self.entries)
        self._refuse_loops(list(chosen.values()))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def lookup(self, found: str) -> Entry | None:
        """The entry a matched piece of text belongs to."""
        key = " ".join(found.split())
        return self._exact.get(key) or self._folded.get(key.lower())

    def apply(self, text: str, phonemes) -> str:
        """``text`` as an engine is given it.

        ``phonemes(word, ipa)`` is the engine's notation for a word said as
        ``ipa``, or None when it takes no phonemes (then the respelling is
        used, or the word as written when there is none).
        """
        if self._pattern is None:
            return text

        def swap(match: re.Match) -> str:
            entry = self.lookup(match.group())
            if entry is None:  # a case that the exact entry does not cover
                return match.group()
            if entry.ipa:
                given = phonemes(match.group(), entry.ipa)
                if given is not None:
                    return given
            return entry.say.lower() if entry.say else match.group()

        return self._pattern.sub(swap, text)

    def _refuse_loops(self, in_order: list[Entry]) -> None:
        """Refuse an entry whose respelling leads back to its own word, directly or through others."""
        if self._pattern is None:
            return
        leads_to: dict[Entry, list[Entry]] = {}
        for entry in in_order:
            found = [self.lookup(m.group()) for m in self._pattern.finditer(entry.say)]
            leads_to[entry] = [e for e in found if e is not None]
        for start in in_order:  # the first written is the one named
            stack: list[tuple[Entry, tuple[Entry, ...]]] = [(e, (e,)) for e in leads_to[start]]
            seen: set[Entry] = set()
            while stack:
                entry, path = stack.pop()
                if entry is start:
                    through = "".join(f" through {e.word!r}" for e in path[:-1])
                    raise SettingsError(
                        f"{start.where}: lexicon entry {start.word!r} loops into itself{through} "
                        f"(its respelling is {start.say!r})"
                    )
                if entry not in seen:
                    seen.add(entry)
                    stack.extend((e, (*path, e)) for e in leads_to[entry])


def _pattern(entries: tuple[Entry, ...]) -> re.Pattern | None:
    """One alternation of every entry, longest first, between word boundaries."""
    if not entries:
        return None
    parts = []
    for entry in entries:
        words = [re.escape(w) for w in entry.word.split()]
        body = r"\s+".join(words)
        parts.append(body if entry.exact_case else f"(?i:{body})")
    return re.compile(rf"(?<!{_WORD_CHARS})(?:{'|'.join(parts)})(?!{_WORD_CHARS})")


def script_lexicon(
    script, path: str | Path | None = None, *, preset: Iterable[Entry] = ()
) -> Lexicon:
    """The lexicon of a render; later sources win over earlier ones on the same word:
    the soundscape preset's ``[lexicon]``, the ``--lexicon`` file's, the front
    matter's, then the script's inline fixes."""
    entries = read_lexicon(path) if path is not None else []
    return Lexicon([*preset, *entries, *getattr(script, "pronunciations", ())])


def read_lexicon(path: str | Path) -> list[Entry]:
    """The ``[lexicon]`` table of a TOML file as entries, each knowing its line.

    A value is a respelling (``Metta = "MET-tah"``), phonemes between slashes
    (``Metta = "/mˈɛtə/"``), or a table giving both
    (``Metta = { say = "MET-tah", ipa = "mˈɛtə" }``).
    """
    path = Path(path)
    document = read_toml(path, error_class=SettingsError, what="lexicon")
    table = document.get("lexicon")
    if table is None:
        raise SettingsError(f"{path}: has no [lexicon] table")
    return lexicon_entries(table, path)


def lexicon_entries(table: object, path: Path) -> list[Entry]:
    """The entries of a ``[lexicon]`` table already read from the TOML file ``path``
    (a lexicon file's, or a soundscape preset's); each knows its line there."""
    if not isinstance(table, Mapping):
        raise SettingsError(f'{path}: [lexicon] must be a table of word = "respelling"')
    # The same bounded read as read_toml's (the text has just been read as valid UTF-8).
    text = read_input(path, "lexicon", MAX_TOML_BYTES).decode("utf-8", errors="replace")
    lines = _key_lines(text, "lexicon")
    entries = []
    for word, value in table.items():
        where = f"{path}:{lines.get(word, 0)}" if lines.get(word) else str(path)
        if isinstance(value, str):
            entries.append(parse_form(word, value, where))
        elif isinstance(value, Mapping):
            unknown = sorted(set(value) - {"say", "ipa"})
            if unknown or not all(isinstance(v, str) for v in value.values()):
                raise SettingsError(
                    f'{where}: lexicon entry {word!r}: give say = "respelling" and/or '
                    'ipa = "phonemes"'
                )
            ipa = value.get("ipa", "").strip().strip("/").strip()
            say = value.get("say", "").strip()
            if not ipa and not say:
                raise SettingsError(f"{where}: lexicon entry {word!r} says nothing (empty)")
            if not word.strip() or not any(c.isalnum() for c in word):
                raise SettingsError(f"{where}: lexicon entry has no word to match")
            entries.append(_checked(Entry(word.strip(), say=say, ipa=ipa, where=where)))
        else:
            raise SettingsError(
                f'{where}: lexicon entry {word!r} must be "respelling", "/phonemes/" or a table'
            )
    return entries


_HEADER = re.compile(r"^\s*\[\s*([^\]]*?)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")


def _key_lines(text: str, table: str) -> dict[str, int]:
    """Line of each key directly in ``[table]`` (tomllib keeps no positions)."""
    lines: dict[str, int] = {}
    current = None
    for number, line in enumerate(text.split("\n"), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).strip().strip("\"'")
            continue
        key = _KEY.match(line)
        if key and current == table:
            try:  # the key as TOML reads it (quotes, escapes)
                (name,) = tomllib.loads(f"{key.group(1)} = 0")
            except (tomllib.TOMLDecodeError, ValueError):
                continue
            lines.setdefault(name, number)
    return lines
