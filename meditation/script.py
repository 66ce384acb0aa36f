"""Stage 1: read a meditation script into scenes of paragraphs and pauses.

The format is plain UTF-8 text; a bare ``.txt`` works as it is (blank lines
separate paragraphs). The markup adds, all optional:

* front matter between two ``---`` lines: ``key: value`` settings
  (title, artist, voice, rate, pause_scale, soundscape, seed, lead_in, tail,
  loudness);
* scene headings: a line ``# The valley``;
* pauses: ``[pause 4s]``, ``[pause 500ms]``, SSML ``<break time="4s"/>`` or
  ``<break strength="strong"/>``, and ``[breathe]`` (a slow breath's length,
  or ``[breathe 8s]``);
* guided breathing: ``[breathe 4-7-8 x4]`` (in 4 s, hold 7 s, out 8 s, four
  cycles), ``[breathe 4-6 x5]`` (in, out), ``[breathe box 4 x3]`` (in, hold,
  out, hold), optionally ending in ``cues`` to have the voice say "in",
  "hold" and "out" at each phase, or ``cues=Breathe in,Hold,Let go`` to choose the words;
* variant lines: ``[either Breathe in slowly | Take a slow breath in]`` speaks
  the first, or with ``--vary`` one chosen by the night's seed
  (``meditation.vary``).

* pronunciation: ``{Metta|MET-tah}`` or ``{Metta|/mˈɛtə/}`` says the word
  as respelled (or as the IPA phonemes) wherever it appears in the script,
  while captions show it as written; a front-matter ``lexicon:`` block
  (indented ``word: respelling`` lines) does the same (see
  ``meditation.lexicon``).

* speakers: a front-matter ``speakers:`` table (``{guide: piper:joe, echo:
  hibari:heart}``, or indented ``name: voice`` lines; see ``meditation.speakers``)
  names voices, and a line starting with a declared name and a colon
  (``Echo: Breathe with me.``) starts that speaker's paragraph; unmarked text
  is the narrator's.

``\\[`` and ``\\<`` write a literal bracket. Anything else in brackets, a
complete tag other than ``<break>``/``<speak>``, an unclosed ``<break``, a
front-matter key given twice and a control character (but tab and newline)
are errors, reported as ``file:line:col: what is wrong``; any other ``<`` is
text. A script is limited to ``MAX_SCRIPT_BYTES``
and must hold something a voice can say.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ScriptError, SettingsError
from .files import InputError, read_input
from .lexicon import Entry, parse_form
from .settings import front_matter_keys
from .speakers import Speaker, SpeakerError, format_speakers, parse_entry, parse_speakers
from .vary import EITHER_CLOSE, EITHER_OPEN, EITHER_SPLIT

__all__ = [
    "Script",
    "Scene",
    "Paragraph",
    "Pause",
    "FRONT_MATTER_KEYS",
    "MAX_SCRIPT_BYTES",
    "parse_script",
    "read_script",
    "has_speakable_text",
]

FRONT_MATTER_KEYS = front_matter_keys()
"""Settings a script's front matter may set (declared in the settings schema)."""

BREATHE_S = 6.0
"""A breath pause: about one slow in-and-out breath."""

_BREAK_STRENGTH_S = {
    "none": 0.0,
    "x-weak": 0.25,
    "weak": 0.5,
    "medium": 1.0,
    "strong": 2.0,
    "x-strong": 4.0,
}


@dataclass(frozen=True, slots=True)
class Paragraph:
    """Text spoken as one paragraph (split into segments later)."""

    text: str
    line: int
    """Line of the script where the paragraph starts."""
    continues: bool = False
    """True when it carries on a paragraph after a written pause (sentence, not paragraph, spacing)."""
    line_starts: tuple[tuple[int, int], ...] = ()
    """(offset in ``text``, line) where each further script line of the paragraph begins, so a word's line is known."""
    speaker: str = ""
    """The declared speaker who says it (``Echo: …``); empty for the narrator (the render's voice)."""


@dataclass(frozen=True, slots=True)
class Pause:
    """An explicit silence written in the script."""

    seconds: float
    kind: str = "pause"
    """``"pause"`` or ``"breathe"``."""
    line: int = 0
    phases: tuple[tuple[str, float], ...] = ()
    """A guided breathing exercise: its phases in order, each ``("in" | "hold" | "out", seconds)``; empty for a plain pause."""
    cues: bool = False
    """Speak "in", "hold", "out" at the start of each phase."""
    cue_words: tuple[tuple[str, str], ...] = ()
    """The words said for each phase (``cues=Breathe in,Hold,Let go``); empty: ``segments.CUE_WORDS``."""
    in_paragraph: bool = False
    """An exercise written after words of the same paragraph (it follows them a sentence gap later)."""
    speaker: str = ""
    """Who says its cues: the speaker of the paragraph it stands in (empty: the narrator)."""


Item = Paragraph | Pause


@dataclass(frozen=True)
class Scene:
    """A named part of the script; soundscape presets key on the name."""

    name: str
    items: tuple[Item, ...]
    line: int = 0


@dataclass(frozen=True)
class Script:
    """A parsed script: settings from the front matter and its scenes in order."""

    path: str
    title: str
    scenes: tuple[Scene, ...]
    settings: dict = field(default_factory=dict)
    """Front-matter settings as written (strings), validated later with the CLI's."""
    setting_lines: dict = field(default_factory=dict)
    """Line of each front-matter key, for error messages."""
    setting_cols: dict = field(default_factory=dict)
    """Column where each front-matter value starts, for error messages inside it."""
    pronunciations: tuple[Entry, ...] = ()
    """Lexicon entries the script gives (front-matter ``lexicon:`` block, then inline fixes)."""
    speakers: tuple[Speaker, ...] = ()
    """Speakers the front matter declares (``speakers:``), in order."""
    speaker_places: dict = field(default_factory=dict)
    """(line, column) of each declared speaker's entry, by lower-case name, for error messages."""

    @property
    def has_scenes(self) -> bool:
        """True if the author named scenes (a script without headings has one unnamed scene)."""
        return any(scene.name for scene in self.scenes)


MAX_SCRIPT_BYTES = 1_000_000
"""Largest script accepted: about 20 hours of speech, far past any meditation."""

_TOO_LARGE = f"is larger than {MAX_SCRIPT_BYTES / 1e6:g} MB, the limit for a script (about 20 hours of speech)"


def read_script(path: str | Path) -> Script:
    """Read and parse a script file, refusing missing, non-regular, oversized, binary or empty files.

    Read through ``files.read_input``: a FIFO or device is refused instead of
    being read forever.
    """
    name = str(path)
    try:
        data = read_input(path, "script", MAX_SCRIPT_BYTES)
    except InputError as exc:
        problem = {
            "missing": "no such script file",
            "folder": "is a folder, not a script file",
            "special": f"{exc.problem}; give a text file",
            "large": _TOO_LARGE,
        }.get(exc.kind, exc.problem)
        raise ScriptError(problem, path=name) from None
    if b"\x00" in data:
        raise ScriptError("is a binary file, not a UTF-8 text script", path=name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScriptError("is not valid UTF-8 text", path=name, line=line, col=1) from None
    return parse_script(text, path=name)


def parse_script(text: str, *, path: str = "<script>") -> Script:
    """Parse script text (see the module docstring for the format).

    Runs in time linear in the length of the text whatever it holds (the
    studio parses as the user types); text over ``MAX_SCRIPT_BYTES`` of UTF-8
    is refused.
    """
    # Characters never outnumber UTF-8 bytes, so the cheap test comes first.
    if (
        len(text) > MAX_SCRIPT_BYTES
        or len(text.encode("utf-8", "surrogatepass")) > MAX_SCRIPT_BYTES
    ):
        raise ScriptError(_TOO_LARGE, path=path)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    control = _CONTROL.search(text)
    if control is not None:
        # Invisible, never spoken, and \x01/\x02 would pass for the escapes \[ and \<.
        at = control.start()
        raise ScriptError(
            f"control character U+{ord(control.group()):04X} in the text (only tab and newline are allowed)",
            path=path,
            line=text.count("\n", 0, at) + 1,
            col=at - text.rfind("\n", 0, at),
        )
    lines = text.split("\n")
    settings: dict[str, str] = {}
    setting_lines: dict[str, int] = {}
    setting_cols: dict[str, int] = {}
    pronunciations: list[Entry] = []
    speakers: list[Speaker] = []
    speaker_places: dict[str, tuple[int, int]] = {}
    start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            raise ScriptError(
                "front matter opened with '---' is never closed", path=path, line=1, col=1
            )
        in_lexicon = False  # inside a ``lexicon:`` block of indented ``word: respelling`` lines
        in_speakers = False  # inside a ``speakers:`` block of indented ``name: voice …`` lines
        for i in range(1, end):
            raw = lines[i]
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            if in_speakers and raw[:1] in " \t":
                speaker = _speaker_entry(raw, path, i + 1, 0, speakers)
                speaker_places[speaker.key] = (i + 1, len(raw) - len(raw.lstrip()) + 1)
                continue
            in_speakers = False
            if in_lexicon and raw[:1] in " \t":
                word, sep, form = raw.partition(":")
                if not sep:
                    raise ScriptError(
                        f"expected 'word: respelling' in the lexicon, got {_quote(raw.strip())}",
                        path=path,
                        line=i + 1,
                        col=1,
                    )
                pronunciations.append(_entry(word, form.strip().strip("\"'"), path, i + 1, 1))
                continue
            in_lexicon = False
            key, sep, value = raw.partition(":")
            key = key.strip().lower().replace("-", "_")
            if not sep:
                raise ScriptError(
                    f"expected 'key: value' in front matter, got {_quote(raw.strip())}",
                    path=path,
                    line=i + 1,
                    col=1,
                )
            if key not in FRONT_MATTER_KEYS:
                raise ScriptError(
                    f"unknown front matter key {_quote(key)} (known: {', '.join(FRONT_MATTER_KEYS)})",
                    path=path,
                    line=i + 1,
                    col=1,
                )
            if key in setting_lines:  # (a speakers: block is in settings only at the end)
                raise ScriptError(
                    f"front matter key {key!r} is given twice (first on line {setting_lines[key]})",
                    path=path,
                    line=i + 1,
                    col=1,
                )
            value_col = len(raw) - len(value.lstrip()) + 1
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
                value_col += 1
            if key == "lexicon" and not value:
                in_lexicon = True
                continue
            if key == "speakers":
                setting_lines[key] = i + 1
                if not value:
                    in_speakers = True
                    continue
                col = raw.index(value) if value in raw else raw.index(":") + 1
                try:
                    declared = parse_speakers(value)
                except SpeakerError as exc:
                    raise ScriptError(
                        exc.message, path=path, line=i + 1, col=col + exc.offset + 1
                    ) from None
                for speaker in declared:
                    at = value.lower().find(speaker.key)
                    speaker_places[speaker.key] = (i + 1, col + max(at, 0) + 1)
                speakers.extend(declared)
                continue
            if not value:
                raise ScriptError(
                    f"front matter key {key!r} has no value",
                    path=path,
                    line=i + 1,
                    col=len(raw) + 1,
                )
            settings[key] = value
            setting_lines[key] = i + 1
            setting_cols[key] = value_col
        if "speakers" in setting_lines and not speakers:
            raise ScriptError(
                "speakers: give at least one indented 'name: voice' line",
                path=path,
                line=setting_lines["speakers"],
                col=1,
            )
        if speakers:
            settings["speakers"] = format_speakers(tuple(speakers))
        start = end + 1

    body = _Body(path, {s.key: s.name for s in speakers})
    for index in range(start, len(lines)):
        body.feed(lines[index], index + 1)
    scenes = body.finish()

    paragraphs = [item for scene in scenes for item in scene.items if isinstance(item, Paragraph)]
    if not any(has_speakable_text(p.text) for p in paragraphs):
        # Emoji, punctuation, or zero-width characters alone would
        # render a silent track; refuse it like an empty script.
        if paragraphs:
            raise ScriptError(
                "script has no text to speak (only emoji, punctuation or invisible characters)",
                path=path,
                line=paragraphs[0].line,
                col=1,
            )
        raise ScriptError("script has no text to speak", path=path)
    seen = set()
    for scene in scenes:
        if scene.name and scene.name.lower() in seen:
            raise ScriptError(
                f"scene {_quote(scene.name)} appears twice; scene names must be unique",
                path=path,
                line=scene.line,
                col=1,
            )
        seen.add(scene.name.lower())
    title = (
        settings.get("title")
        or Path(path).stem.replace("-", " ").replace("_", " ").strip().title()
        or "Meditation"
    )
    return Script(
        path=path,
        title=title,
        scenes=tuple(scenes),
        settings=settings,
        setting_lines=setting_lines,
        setting_cols=setting_cols,
        pronunciations=(*pronunciations, *body.pronunciations),
        speakers=tuple(speakers),
        speaker_places=speaker_places,
    )


def _speaker_entry(raw: str, path: str, line: int, col: int, speakers: list[Speaker]) -> Speaker:
    """One indented ``name: voice …`` line of a ``speakers:`` block, added to ``speakers``."""
    try:
        speaker = parse_entry(raw)
    except SpeakerError as exc:
        raise ScriptError(exc.message, path=path, line=line, col=col + exc.offset + 1) from None
    if any(s.key == speaker.key for s in speakers):
        raise ScriptError(
            f"speaker {speaker.name!r} is declared twice",
            path=path,
            line=line,
            col=len(raw) - len(raw.lstrip()) + 1,
        )
    speakers.append(speaker)
    return speaker


def has_speakable_text(text: str) -> bool:
    """True if ``text`` holds a letter or digit a voice can say (what ``segments.speakable`` keeps)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def _quote(text: str, limit: int = 60) -> str:
    """``repr`` of user text, shortened: an error line stays one readable line."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


class _Body:
    """Collects scenes, paragraphs and pauses line by line."""

    def __init__(self, path: str, speakers: dict[str, str] | None = None):
        self.path = path
        self.speakers = speakers or {}
        """Declared speakers, lower-case name → name as declared: ``Name:`` marks a paragraph."""
        self.speaker = ""  # who says the paragraph being read
        self.scenes: list[Scene] = []
        self.scene_name, self.scene_line = "", 1
        self.items: list[Item] = []
        self.words: list[str] = []
        self.word_lines: list[int] = []
        self.para_line = 0
        self.continuing = False
        self.pronunciations: list[Entry] = []

    def feed(self, raw: str, lineno: int) -> None:
        stripped = raw.strip()
        if stripped.startswith("#"):
            self._end_scene()
            self.continuing = False
            name = stripped.lstrip("#").strip()
            if not name:
                raise ScriptError("scene heading has no name", path=self.path, line=lineno, col=1)
            self.scene_name, self.scene_line = name, lineno
        elif not stripped:
            self._end_paragraph()
            self.continuing = False
            self.speaker = ""
        else:
            if self.speakers:
                raw = self._marked(raw, lineno)
            self._line(raw, lineno)

    def _marked(self, raw: str, lineno: int) -> str:
        """A line that starts with a declared speaker's ``Name:`` starts that speaker's paragraph."""
        match = _SPEAKER_MARK.match(raw)
        if match is None:
            return raw
        if match.group(1).lower() not in self.speakers:
            near = difflib.get_close_matches(match.group(1).lower(), self.speakers, 1, 0.8)
            if near:  # "Ecko:" where Echo is declared: a typo would silently be the narrator's
                raise ScriptError(
                    f"{match.group(1)!r} is not a declared speaker; did you mean "
                    f"{self.speakers[near[0]]!r}? (declared: {', '.join(self.speakers.values())})",
                    path=self.path,
                    line=lineno,
                    col=match.start(1) + 1,
                )
            return raw  # "Note: …" with no speaker called note is text
        self._end_paragraph()
        self.continuing = False
        self.speaker = self.speakers[match.group(1).lower()]
        # Keep the columns of what follows: the mark becomes spaces.
        return " " * match.end() + raw[match.end() :]

    def finish(self) -> list[Scene]:
        self._end_scene()
        return self.scenes

    def _text(self, text: str, lineno: int, col: int = 1, before: str = "") -> None:
        """``before``: text of this line already read (with its fixes), glued on without a space."""
        if "{" in text:
            text = self._fixes(text, lineno, col)
        text = before + text
        if text.strip():
            if not self.words:
                self.para_line = lineno
            self.words.append(_unescape(text))
            self.word_lines.append(lineno)

    def _fixes(self, text: str, lineno: int, col: int) -> str:
        """Inline pronunciation fixes ``{word|respelling}``: keep the word, note the entry."""

        def keep_word(match: re.Match) -> str:
            at = col + match.start()
            self.pronunciations.append(
                _entry(match.group(1), match.group(2), self.path, lineno, at)
            )
            return match.group(1)

        return _FIX.sub(keep_word, text)

    def _end_paragraph(self) -> None:
        joined = " ".join(" ".join(self.words).split())
        if joined:
            # Joining each piece's words gives the same text; note where a new line starts.
            starts, at, line = [], 0, self.para_line
            for piece, lineno in zip(self.words, self.word_lines, strict=True):
                if not piece.split():
                    continue
                if lineno != line:
                    starts.append((at, lineno))
                    line = lineno
                at += len(" ".join(piece.split())) + 1
            self.items.append(
                Paragraph(joined, self.para_line, self.continuing, tuple(starts), self.speaker)
            )
        self.words, self.word_lines, self.para_line = [], [], 0

    def _end_scene(self) -> None:
        self._end_paragraph()
        self.speaker = ""
        if self.items or self.scene_name:
            self.scenes.append(Scene(self.scene_name, tuple(self.items), self.scene_line))
        self.items = []

    def _line(self, raw: str, lineno: int) -> None:
        """Split one line into text and pause directives.

        One left-to-right pass: each search starts where the last one ended,
        so no part of the line is looked at twice (no regex backtracking
        over runs of spaces, no rescanning after an unclosed ``<``).
        """
        text = raw.replace("\\[", "\x01").replace("\\<", "\x02")
        done = 0  # text before this has been handed on
        # An [either …] and the text around it are one piece: a piece each gave "slowly ." for
        # "[either … slowly]." (pieces of a paragraph are joined with a space).
        carry = ""
        at = 0  # where the next search for markup starts
        while True:
            opener = _OPENER.search(text, at)
            if opener is None:
                break
            open_at = opener.start()
            col = open_at + 1
            if opener.group() == "[":
                closer = _BRACKET_END.search(text, open_at + 1)
                if closer is None or closer.group() != "]":
                    raise ScriptError(
                        "'[' is not closed on this line (write \\[ for a literal bracket)",
                        path=self.path,
                        line=lineno,
                        col=col,
                    )
                body = text[open_at + 1 : closer.start()]
                if _EITHER_NAME.match(body):  # variant lines (issue 22): text, not a pause
                    piece = text[done:open_at]
                    carry += self._fixes(piece, lineno, done + 1) if "{" in piece else piece
                    either = _either(body, self.path, lineno, col)
                    carry += self._fixes(either, lineno, col) if "{" in either else either
                    done = at = closer.end()
                    continue
                pause: Pause | None = _bracket_directive(body, self.path, lineno, col)
            else:
                closer = _ANGLE_END.search(text, open_at + 1)
                if (closer is None or closer.group() != ">") and not _KNOWN_TAG.match(
                    text, open_at + 1
                ):
                    # "If a<b then rest.": a '<' that neither closes nor names a known tag is text.
                    at = open_at + 1
                    continue
                if closer is None or closer.group() != ">":
                    raise ScriptError(
                        "tag is not closed with '>' on this line (write \\< for a literal '<')",
                        path=self.path,
                        line=lineno,
                        col=col,
                    )
                pause = _angle_directive(text[open_at + 1 : closer.start()], self.path, lineno, col)
            self._text(text[done:open_at], lineno, done + 1, carry)
            carry = ""
            if pause is not None:
                had_words = bool(self.words) or self.continuing
                self._end_paragraph()
                if pause.phases:
                    pause = Pause(
                        pause.seconds,
                        pause.kind,
                        pause.line,
                        pause.phases,
                        pause.cues,
                        pause.cue_words,
                        in_paragraph=had_words,
                        speaker=self.speaker,
                    )
                self.items.append(pause)
                self.continuing = had_words
            done = at = closer.end()
        self._text(text[done:], lineno, done + 1, carry)


def _entry(word: str, form: str, path: str, line: int, col: int) -> Entry:
    """A lexicon entry written in the script; a bad one is a ScriptError at its place."""
    where = f"{path}:{line}:{col}"
    try:
        return parse_form(word, form, where)
    except SettingsError as exc:
        raise ScriptError(
            str(exc).removeprefix(where + ": "), path=path, line=line, col=col
        ) from None


# Markup is found by searching for its first character, never by one pattern
# spanning a whole directive, and the end by searching on from there: no
# backtracking, nothing scanned twice. A '<' starts a tag only when a name
# (or '/') follows at once, as in HTML, so "a < b" and "<3" stay text; and an
# unclosed one only when it names a tag we know ("If a<b then" is text).
_OPENER = re.compile(r"\[|<(?=/?[A-Za-z])")
# Cc but tab and newline (a carriage return is a newline by then).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_KNOWN_TAG = re.compile(r"/?(?:break|speak)(?![A-Za-z])", re.IGNORECASE)
_BRACKET_END = re.compile(r"[\[\]]")
_ANGLE_END = re.compile(r"[<>\[\]]")
_WORD = re.compile(r"\S+")
# ``{word|respelling}``: braces without a bar inside stay text.
_FIX = re.compile(r"\{([^{}|\n]++)\|([^{}|\n]*+)\}")
# Possessive quantifiers: a failed match gives nothing back, so it costs one pass.
_DURATION = re.compile(r"(\d++(?:\.\d++)?+)[ \t]*+(ms|s|sec|seconds?)?+")
# The look-behind stops retries from the middle of a word (quadratic on "aaaa…").
_ATTR = re.compile(r"""(?<![A-Za-z-])([A-Za-z-]++)[ \t]*+=[ \t]*+(?:"([^"]*+)"|'([^']*+)')""")
_TAG_NAME = re.compile(r"[ \t]*+(/?)[ \t]*+([A-Za-z]*+)")


def _unescape(text: str) -> str:
    return text.replace("\x01", "[").replace("\x02", "<")


_EITHER_NAME = re.compile(r"[ \t]*+either(?![A-Za-z])")
# A bar between lines, not the one inside a pronunciation fix ``{Metta|MET-tah}``.
_EITHER_BAR = re.compile(r"\|(?![^{}]*+\})")
# ``Echo: …`` at the start of a line; whether it marks a speaker depends on the names declared.
_SPEAKER_MARK = re.compile(r"[ \t]*+([A-Za-z][A-Za-z0-9_-]{0,31}):[ \t]*+")


def _either(body: str, path: str, line: int, col: int) -> str:
    """``[either A | B | C]``: the lines, kept for the render to choose from (see ``meditation.vary``)."""
    body = _EITHER_NAME.sub("", body, count=1)
    options = [" ".join(o.split()) for o in _EITHER_BAR.split(body)]
    if len(options) < 2 or not all(options):
        raise ScriptError(
            "[either] needs two or more lines between |, e.g. [either Breathe in slowly | Take a slow breath in]",
            path=path,
            line=line,
            col=col,
        )
    return EITHER_OPEN + EITHER_SPLIT.join(options) + EITHER_CLOSE


def _bracket_directive(body: str, path: str, line: int, col: int) -> Pause:
    words = body.strip().split(None, 1)
    if not words:
        raise ScriptError(
            "empty [] directive (write \\[ for a literal bracket)", path=path, line=line, col=col
        )
    name = words[0].lower()
    arg = words[1] if len(words) > 1 else ""
    if name == "pause":
        if not arg:
            raise ScriptError(
                "[pause] needs a length, e.g. [pause 4s]", path=path, line=line, col=col
            )
        return Pause(_duration(arg, path, line, col), "pause", line)
    if name == "breathe":
        if not arg:
            return Pause(BREATHE_S, "breathe", line)
        length = _DURATION.fullmatch(arg.strip())
        if length is None:
            return _breathing(body, path, line, col)
        if length.group(2) is None:
            raise ScriptError(
                f"bad [breathe] length {_quote(arg.strip())}: write [breathe 8s], or a pattern such as [breathe 4-7-8 x4]",
                path=path,
                line=line,
                col=col,
            )
        return Pause(_duration(arg, path, line, col), "breathe", line)
    raise ScriptError(
        f"unknown directive [{_unescape(body.strip())[:40]}] (known: [pause 4s], [breathe], [breathe 4-7-8 x4], [either A | B]; write \\[ for a literal bracket)",
        path=path,
        line=line,
        col=col,
    )


_PHASE_NAMES = {2: ("in", "out"), 3: ("in", "hold", "out"), 4: ("in", "hold", "out", "hold")}
_PHASE_S = (1.0, 60.0)
_MAX_CYCLES = 100
_PHASE = re.compile(r"(\d{1,3}(?:\.\d{1,3})?)s?", re.ASCII)
_BREATHING_HELP = "write e.g. [breathe 4-7-8 x4], [breathe box 4 x3] or [breathe 4-6 x5 cues]"
_CUE_LIST = re.compile(r"(?<!\S)cues[ \t]*+=", re.IGNORECASE)
_CUE_EXAMPLE = {"in": "Breathe in", "hold": "Hold", "out": "Let go"}
_MAX_CUE_CHARS = 60


def _breathing(body: str, path: str, line: int, col: int) -> Pause:
    """A guided breathing exercise: ``breathe PATTERN [xCYCLES] [cues]``."""

    def fail(message: str, at: int) -> ScriptError:
        return ScriptError(f"{message} ({_BREATHING_HELP})", path=path, line=line, col=at)

    # "cues=Breathe in,Hold,Let go": the rest of the directive is the words, spaces and all.
    said = _CUE_LIST.search(body)
    said_text = body[said.end() :] if said else None
    said_col = col + 1 + said.start() if said else col
    if said:
        body = body[: said.start()]
    # Column of each word inside the brackets, so an error points at the bad word.
    words = [(m.group(), col + 1 + m.start()) for m in _WORD.finditer(body)][1:]
    if not words:
        raise fail("[breathe] needs a pattern before cues=", said_col)

    pattern, pattern_col = words[0]
    rest = words[1:]
    if pattern.lower() == "box":
        if not rest:
            raise fail("[breathe box] needs a length in seconds", pattern_col)
        side, side_col = rest.pop(0)
        seconds = [_phase_seconds(side, fail, side_col)] * 4
    else:
        parts = pattern.split("-")
        if len(parts) not in _PHASE_NAMES:
            raise fail(
                f"bad breathing pattern {_quote(pattern)}: give 2 to 4 lengths in seconds joined by '-'",
                pattern_col,
            )
        seconds, at = [], pattern_col
        for i, part in enumerate(parts):
            seconds.append(_phase_seconds(part, fail, at, hold=len(parts) > 2 and i % 2 == 1))
            at += len(part) + 1
    cycles, cues = None, False
    for word, word_col in rest:
        lower = word.lower()
        if lower == "cues" and not cues:
            cues = True
        elif lower[:1] == "x" and lower[1:].isdecimal() and cycles is None:
            cycles = int(lower[1:])
            if not 1 <= cycles <= _MAX_CYCLES:
                raise fail(f"{word} cycles is out of range (x1 to x{_MAX_CYCLES})", word_col)
        else:
            raise fail(f"unexpected {_quote(word)} in [breathe]", word_col)
    cycles = cycles or 1
    names = _PHASE_NAMES[len(seconds)]
    cycle = tuple((name, s) for name, s in zip(names, seconds) if s > 0)
    phases = cycle * cycles
    cue_words: tuple[tuple[str, str], ...] = ()
    if said_text is not None:
        if cues:
            raise fail("give cues or cues=WORDS, not both", said_col)
        kinds = tuple(dict.fromkeys(name for name, _ in cycle))  # in, [hold,] out
        given = [" ".join(w.split()) for w in _unescape(said_text).split(",")]
        if len(given) != len(kinds) or not all(has_speakable_text(w) for w in given):
            raise fail(
                f"cues= needs {len(kinds)} words or phrases joined by commas, one for each of "
                f"{', '.join(kinds)}, e.g. cues={','.join(_CUE_EXAMPLE[k] for k in kinds)}",
                said_col,
            )
        if any(len(w) > _MAX_CUE_CHARS for w in given):
            raise fail(f"a cue is longer than {_MAX_CUE_CHARS} characters", said_col)
        cues, cue_words = True, tuple(zip(kinds, given))
    return Pause(
        sum(s for _, s in phases), "breathe", line, phases=phases, cues=cues, cue_words=cue_words
    )


def _phase_seconds(text: str, fail, col: int, *, hold: bool = False) -> float:
    match = _PHASE.fullmatch(text)
    if not match:
        raise fail(f"bad breathing pattern {_quote(text)}: lengths are seconds, e.g. 4 or 4.5", col)
    value = float(match.group(1))
    low, high = _PHASE_S
    if hold and value == 0:
        return 0.0  # "4-0-8": no hold
    if not low <= value <= high:
        raise fail(
            f"a breathing phase of {match.group(1)} s is out of range ({low:g} to {high:g} s)", col
        )
    return value


def _angle_directive(body: str, path: str, line: int, col: int) -> Pause | None:
    head = _TAG_NAME.match(body)
    assert head is not None  # every part of the pattern is optional: it matches any text
    closing, raw_tag = head.group(1), head.group(2)
    tag = raw_tag.lower()
    attrs = body[head.end() :].rstrip()
    if attrs.endswith("/"):
        attrs = attrs[:-1]
    if tag == "speak":
        return None  # SSML wrapper that people paste from other tools
    if tag != "break" or closing:
        raise ScriptError(
            f"unsupported tag <{closing}{raw_tag[:40]}> (only <break time=\"4s\"/> is understood; write \\< for a literal '<')",
            path=path,
            line=line,
            col=col,
        )
    values = {}
    for a in _ATTR.finditer(attrs):
        values[a.group(1).lower()] = a.group(2) if a.group(2) is not None else a.group(3)
    if "time" in values:
        return Pause(_duration(values["time"], path, line, col), "pause", line)
    if "strength" in values:
        strength = values["strength"].lower()
        if strength not in _BREAK_STRENGTH_S:
            raise ScriptError(
                f"unknown break strength {_quote(values['strength'])} (known: {', '.join(_BREAK_STRENGTH_S)})",
                path=path,
                line=line,
                col=col,
            )
        return Pause(_BREAK_STRENGTH_S[strength], "pause", line)
    raise ScriptError('<break> needs time="4s" or strength="strong"', path=path, line=line, col=col)


def _duration(text: str, path: str, line: int, col: int) -> float:
    match = _DURATION.fullmatch(text.strip())
    if not match or match.group(2) is None:
        raise ScriptError(
            f"bad pause length {_quote(text.strip())} (write e.g. 4s or 500ms)",
            path=path,
            line=line,
            col=col,
        )
    value = float(match.group(1))
    seconds = value / 1000.0 if match.group(2) == "ms" else value
    if seconds > 600:
        raise ScriptError(
            f"pause of {text.strip()} is longer than 10 minutes", path=path, line=line, col=col
        )
    return seconds
