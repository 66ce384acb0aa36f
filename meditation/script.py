"""Stage 1: read a meditation script into scenes of paragraphs and pauses.

The format is plain UTF-8 text; a bare ``.txt`` works as it is (blank lines
separate paragraphs). The markup adds, all optional:

* front matter between two ``---`` lines: ``key: value`` settings
  (title, artist, voice, rate, pause_scale, soundscape, seed, lead_in, tail,
  loudness);
* scene headings: a line ``# The valley``;
* pauses: ``[pause 4s]``, ``[pause 500ms]``, SSML ``<break time="4s"/>`` or
  ``<break strength="strong"/>``, and ``[breathe]`` (a slow breath's length,
  or ``[breathe 8s]``).

``\\[`` writes a literal bracket. Anything else in brackets or angle brackets
is an error, reported as ``file:line:col: what is wrong``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from .errors import ScriptError
from .settings import front_matter_keys

__all__ = ["Script", "Scene", "Paragraph", "Pause", "FRONT_MATTER_KEYS", "parse_script", "read_script"]

FRONT_MATTER_KEYS = front_matter_keys()
"""Settings a script's front matter may set (declared in the settings schema)."""

BREATHE_S = 6.0
"""A breath pause: about one slow in-and-out breath."""

_BREAK_STRENGTH_S = {"none": 0.0, "x-weak": 0.25, "weak": 0.5, "medium": 1.0, "strong": 2.0, "x-strong": 4.0}


@dataclass(frozen=True)
class Paragraph:
    """Text spoken as one paragraph (split into segments later)."""

    text: str
    line: int
    """Line of the script where the paragraph starts."""
    continues: bool = False
    """True when it carries on a paragraph after a written pause (sentence, not paragraph, spacing)."""


@dataclass(frozen=True)
class Pause:
    """An explicit silence written in the script."""

    seconds: float
    kind: str = "pause"
    """``"pause"`` or ``"breathe"``."""
    line: int = 0


Item = Union[Paragraph, Pause]


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

    @property
    def has_scenes(self) -> bool:
        """True if the author named scenes (a script without headings has one unnamed scene)."""
        return any(scene.name for scene in self.scenes)


def read_script(path: str | Path) -> Script:
    """Read and parse a script file, refusing missing, binary or empty files."""
    path = Path(path)
    name = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScriptError("no such script file", path=name) from None
    except IsADirectoryError:
        raise ScriptError("is a folder, not a script file", path=name) from None
    except OSError as exc:
        raise ScriptError(f"cannot read: {exc.strerror}", path=name) from None
    if b"\x00" in data:
        raise ScriptError("is a binary file, not a UTF-8 text script", path=name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScriptError("is not valid UTF-8 text", path=name, line=line, col=1) from None
    return parse_script(text, path=name)


_DIRECTIVE = re.compile(r"\[([^\[\]\n]*)\]|<\s*(/?)\s*([A-Za-z]*)([^<>\n]*?)(/?)\s*>")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)?\s*$")
_ATTR = re.compile(r'([A-Za-z-]+)\s*=\s*"([^"]*)"|([A-Za-z-]+)\s*=\s*\'([^\']*)\'')


def parse_script(text: str, *, path: str = "<script>") -> Script:
    """Parse script text (see the module docstring for the format)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    settings: dict[str, str] = {}
    setting_lines: dict[str, int] = {}
    start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            raise ScriptError("front matter opened with '---' is never closed", path=path, line=1, col=1)
        for i in range(1, end):
            raw = lines[i]
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            key, sep, value = raw.partition(":")
            key = key.strip().lower().replace("-", "_")
            if not sep:
                raise ScriptError(f"expected 'key: value' in front matter, got {raw.strip()!r}", path=path, line=i + 1, col=1)
            if key not in FRONT_MATTER_KEYS:
                raise ScriptError(
                    f"unknown front matter key {key!r} (known: {', '.join(FRONT_MATTER_KEYS)})",
                    path=path,
                    line=i + 1,
                    col=1,
                )
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if not value:
                raise ScriptError(f"front matter key {key!r} has no value", path=path, line=i + 1, col=len(raw) + 1)
            settings[key] = value
            setting_lines[key] = i + 1
        start = end + 1

    body = _Body(path)
    for index in range(start, len(lines)):
        body.feed(lines[index], index + 1)
    scenes = body.finish()

    if not any(isinstance(item, Paragraph) for scene in scenes for item in scene.items):
        raise ScriptError("script has no text to speak", path=path)
    seen = set()
    for scene in scenes:
        if scene.name and scene.name.lower() in seen:
            raise ScriptError(f"scene {scene.name!r} appears twice; scene names must be unique", path=path, line=scene.line, col=1)
        seen.add(scene.name.lower())
    title = settings.get("title") or Path(path).stem.replace("-", " ").replace("_", " ").strip().title() or "Meditation"
    return Script(path=path, title=title, scenes=tuple(scenes), settings=settings, setting_lines=setting_lines)


class _Body:
    """Collects scenes, paragraphs and pauses line by line."""

    def __init__(self, path: str):
        self.path = path
        self.scenes: list[Scene] = []
        self.scene_name, self.scene_line = "", 1
        self.items: list[Item] = []
        self.words: list[str] = []
        self.para_line = 0
        self.continuing = False

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
        else:
            self._line(raw, lineno)

    def finish(self) -> list[Scene]:
        self._end_scene()
        return self.scenes

    def _text(self, text: str, lineno: int) -> None:
        if text.strip():
            if not self.words:
                self.para_line = lineno
            self.words.append(_unescape(text))

    def _end_paragraph(self) -> None:
        joined = " ".join(" ".join(self.words).split())
        if joined:
            self.items.append(Paragraph(joined, self.para_line, self.continuing))
        self.words, self.para_line = [], 0

    def _end_scene(self) -> None:
        self._end_paragraph()
        if self.items or self.scene_name:
            self.scenes.append(Scene(self.scene_name, tuple(self.items), self.scene_line))
        self.items = []

    def _line(self, raw: str, lineno: int) -> None:
        """Split one line into text and pause directives."""
        text = raw.replace("\\[", "\x01").replace("\\<", "\x02")
        pos = 0
        for match in _DIRECTIVE.finditer(text):
            self._text(text[pos : match.start()], lineno)
            col = match.start() + 1
            if match.group(1) is not None:
                pause = _bracket_directive(match.group(1), self.path, lineno, col)
            else:
                pause = _angle_directive(match, self.path, lineno, col)
            if pause is not None:
                had_words = bool(self.words) or self.continuing
                self._end_paragraph()
                self.items.append(pause)
                self.continuing = had_words
            pos = match.end()
        self._text(text[pos:], lineno)


def _unescape(text: str) -> str:
    return text.replace("\x01", "[").replace("\x02", "<")


def _bracket_directive(body: str, path: str, line: int, col: int) -> Pause:
    words = body.strip().split(None, 1)
    if not words:
        raise ScriptError("empty [] directive (write \\[ for a literal bracket)", path=path, line=line, col=col)
    name = words[0].lower()
    arg = words[1] if len(words) > 1 else ""
    if name == "pause":
        if not arg:
            raise ScriptError("[pause] needs a length, e.g. [pause 4s]", path=path, line=line, col=col)
        return Pause(_duration(arg, path, line, col), "pause", line)
    if name == "breathe":
        seconds = _duration(arg, path, line, col) if arg else BREATHE_S
        return Pause(seconds, "breathe", line)
    raise ScriptError(
        f"unknown directive [{body.strip()}] (known: [pause 4s], [breathe]; write \\[ for a literal bracket)",
        path=path,
        line=line,
        col=col,
    )


def _angle_directive(match: re.Match, path: str, line: int, col: int) -> Pause | None:
    closing, tag, attrs = match.group(2), match.group(3).lower(), match.group(4)
    if tag == "speak":
        return None  # SSML wrapper that people paste from other tools
    if tag != "break" or closing:
        raise ScriptError(
            f"unsupported tag <{closing}{match.group(3)}> (only <break time=\"4s\"/> is understood)",
            path=path,
            line=line,
            col=col,
        )
    values = {}
    for a in _ATTR.finditer(attrs):
        key = (a.group(1) or a.group(3)).lower()
        values[key] = a.group(2) if a.group(1) else a.group(4)
    if "time" in values:
        return Pause(_duration(values["time"], path, line, col), "pause", line)
    if "strength" in values:
        strength = values["strength"].lower()
        if strength not in _BREAK_STRENGTH_S:
            raise ScriptError(
                f"unknown break strength {values['strength']!r} (known: {', '.join(_BREAK_STRENGTH_S)})",
                path=path,
                line=line,
                col=col,
            )
        return Pause(_BREAK_STRENGTH_S[strength], "pause", line)
    raise ScriptError('<break> needs time="4s" or strength="strong"', path=path, line=line, col=col)


def _duration(text: str, path: str, line: int, col: int) -> float:
    match = _DURATION.match(text)
    if not match or match.group(2) is None:
        raise ScriptError(f"bad pause length {text.strip()!r} (write e.g. 4s or 500ms)", path=path, line=line, col=col)
    value = float(match.group(1))
    seconds = value / 1000.0 if match.group(2) == "ms" else value
    if seconds > 600:
        raise ScriptError(f"pause of {text.strip()} is longer than 10 minutes", path=path, line=line, col=col)
    return seconds
