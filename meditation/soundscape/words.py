"""``--soundscape auto``: the script's own words choose its soundscape.

Each scene's heading and text are read for words that name places and
sounds (a word list: ``soundscapes/auto/words.toml``, extended by
``--words FILE.toml``); the places they name choose the layers that play in
the scene, and sounds such as a bell or thunder become one-shot cues at the
words that name them. The result is an ordinary in-memory ``Preset``, so
the planner gives it per-scene levels and crossfades like a hand-made one;
it carries each scene's reasons (``timeline.Choice``) for the timings, the
plot and ``render --explain``.

A word matches a whole word of the script, as written or with one of the
list's suffixes (``rain``: rains, raining, rainfall), never inside another
word (no "train" for rain), and not when a negator comes a few words before
it in the same clause ("no wind").
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import SoundscapeError
from ..files import read_input
from ..script import Paragraph, Script
from ..timeline import Choice
from ..tomlfile import MAX_TOML_BYTES, read_toml
from .layers import LAYERS
from .preset import FADE_S_RANGE, LEVEL_DB_RANGE, PRESET_DIRS, CueSpec, LayerSpec, Preset, SceneSpec

__all__ = [
    "WORDS_FILE",
    "Match",
    "WordList",
    "auto_preset",
    "choose",
    "describe_words",
    "explain",
    "explain_script",
    "find_words",
    "load_words",
    "tokens",
]

WORDS_FILE = PRESET_DIRS[0] / "auto" / "words.toml"
"""The shipped word list (in a subfolder: it is not a preset)."""

# A word: letters, with inner apostrophes (isn't, river's); digits and underscores split words.
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# What ends a clause, for negation: "no wind, only rain" does not negate the rain.
_CLAUSE_END = re.compile(r"[,;:.!?()\[\]\"“”—–]|\s-\s")


@dataclass(frozen=True)
class Place:
    """Words that name a place, and the layers it plays (dB on top of each layer's level)."""

    name: str
    words: tuple[str, ...]
    play: Mapping[str, float]


@dataclass(frozen=True)
class CueWords:
    """Words that name a one-shot sound, and the cue that plays it there."""

    name: str
    words: tuple[str, ...]
    layer: LayerSpec
    action: str


@dataclass(frozen=True)
class WordList:
    """A parsed, checked word list: what ``auto`` listens for and what it plays."""

    layers: Mapping[str, LayerSpec]
    places: Mapping[str, Place]
    cues: Mapping[str, CueWords]
    negators: frozenset[str]
    negation_window: int
    suffixes: tuple[str, ...]
    exclude: frozenset[str]
    fade_s: float
    passing_db: float
    quiet: str
    paths: tuple[Path, ...]
    index: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    """Each listed word (lower case) -> the (kind, name) it names: ``("place", "sea")``, ``("cue", "bell")``."""


@dataclass(frozen=True)
class Match:
    """One word of the script that names a place or a cue."""

    kind: str
    """``"place"`` or ``"cue"``."""
    name: str
    word: str
    """As written in the script."""
    line: int
    negated: bool = False
    heading: bool = False
    nth: int = 0
    """Which whole-word occurrence of ``word`` (lower case) in the spoken text this is, from 0."""


# --- reading the list ---


def load_words(extra: str | Path | None = None) -> WordList:
    """The shipped word list, with ``extra``'s tables merged over it (same names replace)."""
    data, lines = _read(WORDS_FILE)
    paths = [WORDS_FILE]
    if extra is not None:
        more, more_lines = _read(Path(extra))
        paths.append(Path(extra))
        for key, value in more.items():
            if key in ("layers", "places", "cues") and isinstance(value, Mapping):
                base = data.get(key, {})
                data[key] = {**base, **value} if isinstance(base, Mapping) else value
            else:
                data[key] = value
        lines = {**lines, **{k: (Path(extra), v[1]) for k, v in more_lines.items()}}
    return replace(_parse(data, lines, paths[-1]), paths=tuple(paths))


def _read(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], tuple[Path, int]]]:
    data = read_toml(path, error_class=SoundscapeError, what="word list")
    # The same bounded read as read_toml's (the text has just been read as valid UTF-8).
    text = read_input(path, "word list", MAX_TOML_BYTES).decode("utf-8", errors="replace")
    return data, {k: (path, n) for k, n in _key_lines(text).items()}


_HEADER = re.compile(r"^\s*\[\s*([^\]]*?)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line of each table header and key, by path (tomllib keeps no positions)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.split("\n"), start=1):
        header = _HEADER.match(line)
        if header:
            try:  # the header's path as TOML reads it (quotes, dots)
                parsed: Any = tomllib.loads(f"[{header.group(1)}]")
            except tomllib.TOMLDecodeError:
                continue
            path: list[str] = []
            while isinstance(parsed, dict) and len(parsed) == 1:
                (name, parsed), path = next(iter(parsed.items())), [*path, next(iter(parsed))]
            table = tuple(path)
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            try:
                (name,) = tomllib.loads(f"{key.group(1)} = 0")
            except (tomllib.TOMLDecodeError, ValueError):
                continue
            lines.setdefault((*table, name), number)
    return lines


def _parse(
    data: Mapping[str, Any], lines: Mapping[tuple[str, ...], tuple[Path, int]], last: Path
) -> WordList:
    def fail(where: tuple[str, ...], message: str) -> SoundscapeError:
        # The nearest line known: the key's, else its table's.
        for n in range(len(where), -1, -1):
            if where[:n] in lines and n:
                path, line = lines[where[:n]]
                return SoundscapeError(f"{path}:{line}: {message}")
        return SoundscapeError(f"{last}: {message}")  # no line known: the file read last

    known = {
        "fade_s",
        "passing_db",
        "quiet",
        "negation_window",
        "negators",
        "suffixes",
        "exclude",
        "layers",
        "places",
        "cues",
    }
    for key in data:
        if key not in known:
            raise fail((key,), f"unknown key {key!r} (known: {', '.join(sorted(known))})")

    def number(where: tuple[str, ...], value: Any, low: float, high: float) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not low <= value <= high
        ):
            raise fail(
                where, f"{'.'.join(where)} must be a number from {low:g} to {high:g}, not {value!r}"
            )
        return float(value)

    def word_list(where: tuple[str, ...], value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
            raise fail(where, f"{'.'.join(where)} must be a list of words")
        for w in value:
            if not _TOKEN.fullmatch(w.strip()):
                raise fail(where, f"{'.'.join(where)}: {w!r} is not one word (letters only)")
        return tuple(w.strip().lower() for w in value)

    def table(where: tuple[str, ...], value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise fail(where, f"[{'.'.join(where)}] must be a table")
        return value

    def layer_spec(where: tuple[str, ...], name: str, kind: str, body: Mapping[str, Any], skip=()):
        if kind not in LAYERS:
            raise fail(where, f"unknown layer {kind!r} (known: {', '.join(sorted(LAYERS))})")
        params = {k: v for k, v in body.items() if k != "level_db" and k not in skip}
        try:
            LAYERS[kind].make_params(params)
        except SoundscapeError as exc:
            raise fail(where, str(exc)) from None
        level = number((*where, "level_db"), body.get("level_db", 0.0), *LEVEL_DB_RANGE)
        return LayerSpec(name, level, params, "" if kind == name else kind)

    layers = {
        name: layer_spec(("layers", name), name, name, table(("layers", name), body))
        for name, body in table(("layers",), data.get("layers", {})).items()
    }
    places = {}
    for name, body in table(("places",), data.get("places", {})).items():
        body = table(("places", name), body)
        for key in body:
            if key not in ("words", "play"):
                raise fail(
                    ("places", name, key),
                    f"places.{name}: unknown key {key!r} (known: play, words)",
                )
        play = table(("places", name, "play"), body.get("play", {}))
        for layer, db in play.items():
            if layer not in layers:
                raise fail(
                    ("places", name, "play"),
                    f"places.{name} plays {layer!r}, which is not in [layers] (it has: {', '.join(layers)})",
                )
            number(("places", name, "play"), db, -80.0, 24.0)
        places[name] = Place(
            name,
            word_list(("places", name, "words"), body.get("words", [])),
            {k: float(v) for k, v in play.items()},
        )
    cues = {}
    for name, body in table(("cues",), data.get("cues", {})).items():
        where = ("cues", name)
        body = table(where, body)
        if name in layers:
            raise fail(where, f"cue {name!r} has the name of a layer in [layers]; name it apart")
        kind = body.get("layer")
        if not isinstance(kind, str):
            raise fail(
                where, f'cues.{name} needs layer = "NAME" (one of {", ".join(sorted(LAYERS))})'
            )
        spec = layer_spec(where, name, kind, body, skip=("words", "layer", "action"))
        action = body.get("action")
        if action not in spec.cls.cue_actions:
            raise fail(
                (*where, "action"),
                f"cues.{name}: layer {kind!r} has no cue {action!r} "
                f"(known: {', '.join(sorted(spec.cls.cue_actions)) or 'none'})",
            )
        cues[name] = CueWords(
            name, word_list((*where, "words"), body.get("words", [])), spec, str(action)
        )
    quiet = data.get("quiet", "quiet")
    if quiet not in places:
        raise fail(("quiet",), f"quiet = {quiet!r} names no [places] table")
    window = data.get("negation_window", 4)
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 20:
        raise fail(
            ("negation_window",),
            f"negation_window must be a whole number from 0 to 20, not {window!r}",
        )
    suffixes = data.get("suffixes", [])
    if not isinstance(suffixes, list) or not all(
        isinstance(s, str) and s.isalpha() for s in suffixes
    ):
        raise fail(("suffixes",), "suffixes must be a list of letters-only endings")
    index: dict[str, list[tuple[str, str]]] = {}
    for kind_name, group in (("place", places), ("cue", cues)):
        for name, entry in group.items():
            for w in entry.words:
                index.setdefault(w.replace("’", "'"), []).append((kind_name, name))
    return WordList(
        layers=layers,
        places=places,
        cues=cues,
        negators=frozenset(word_list(("negators",), data.get("negators", []))),
        negation_window=window,
        suffixes=tuple(sorted({s.lower() for s in suffixes}, key=len, reverse=True)),
        exclude=frozenset(word_list(("exclude",), data.get("exclude", []))),
        fade_s=number(("fade_s",), data.get("fade_s", 8.0), *FADE_S_RANGE),
        passing_db=number(("passing_db",), data.get("passing_db", -6.0), -40.0, 0.0),
        quiet=quiet,
        paths=(),
        index={k: tuple(v) for k, v in index.items()},
    )


# --- matching ---


def tokens(text: str) -> Iterator[tuple[int, str, bool]]:
    """Each word of ``text``: (offset, word, starts a new clause)."""
    end = 0
    for m in _TOKEN.finditer(text):
        yield m.start(), m.group(), bool(_CLAUSE_END.search(text, end, m.start())) or end == 0
        end = m.end()


def _base(token: str, words: WordList) -> Iterator[str]:
    """The forms a word of the script may be listed as: itself, less a suffix, with its e or single consonant back."""
    yield token
    for suffix in words.suffixes:
        if token.endswith(suffix) and len(token) - len(suffix) >= 2:
            stem = token[: -len(suffix)]
            yield stem
            yield stem + "e"  # waving -> wave
            if len(stem) >= 3 and stem[-1] == stem[-2]:
                yield stem[:-1]  # starry -> star
            if stem.endswith("i"):
                yield stem[:-1] + "y"  # stormier -> stormy


def find_words(
    text: str,
    words: WordList,
    *,
    line: int = 0,
    line_starts: Sequence[tuple[int, int]] = (),
    counts: dict[str, int] | None = None,
    heading: bool = False,
) -> list[Match]:
    """The words of ``text`` that name a place or a cue, in order (negated ones too, marked).

    ``line``/``line_starts``: where the text and each of its further lines
    begin in the script (``script.Paragraph``). ``counts``: occurrences of
    each word so far in the spoken text, updated, so a cue can be anchored
    to this occurrence (``Match.nth``).
    """
    found: list[Match] = []
    clause: list[str] = []
    for offset, raw, new_clause in tokens(text):
        word = raw.lower().replace("’", "'")
        if counts is not None:
            nth = counts.get(word, 0)
            counts[word] = nth + 1
        else:
            nth = 0
        if new_clause:
            clause = []
        negated = any(
            w in words.negators or w.endswith("n't")
            for w in clause[-words.negation_window :]
            if words.negation_window
        )
        clause.append(word)
        bare = word[:-2] if word.endswith("'s") else word
        if bare in words.exclude:
            continue
        named = next((words.index[b] for b in _base(bare, words) if b in words.index), ())
        at_line = line
        for start, number in line_starts:
            if start <= offset:
                at_line = number
        for kind, name in named:
            found.append(Match(kind, name, raw, at_line, negated, heading, nth))
    return found


# --- the preset ---


def auto_preset(script: Script, words: WordList) -> Preset:
    """The soundscape ``script``'s words choose, as a preset, with each scene's reasons in ``Preset.why``."""
    scenes: dict[str, SceneSpec] = {}
    why: dict[str, tuple[Choice, ...]] = {}
    cue_specs: list[CueSpec] = []
    used: set[str] = set()
    counts: dict[str, int] = {}
    previous: tuple[str, SceneSpec, tuple[Choice, ...]] | None = None
    quiet = _place_spec([(words.places[words.quiet], 0.0)], words)
    for scene in script.scenes:
        matches = find_words(scene.name, words, line=scene.line, heading=True)
        for item in scene.items:
            if isinstance(item, Paragraph):
                matches += find_words(
                    item.text,
                    words,
                    line=item.line,
                    line_starts=item.line_starts,
                    counts=counts,
                )
        heard = [m for m in matches if not m.negated]
        weight: dict[str, int] = {}
        for m in heard:
            if m.kind == "place":
                weight[m.name] = weight.get(m.name, 0) + (2 if m.heading else 1)
        choices: list[Choice] = []
        if weight:
            most = max(weight.values())
            chosen = [
                (words.places[name], words.passing_db if n == 1 and most > 1 else 0.0)
                for name, n in weight.items()
            ]
            spec = _place_spec(chosen, words)
            for place, offset in chosen:
                choices.append(
                    Choice(
                        place.name,
                        tuple(place.play),
                        _said(m for m in heard if m.kind == "place" and m.name == place.name),
                        level_db=offset,
                    )
                )
        elif previous is None:
            spec = quiet
            choices.append(Choice(words.quiet, tuple(spec.layers), ()))
        else:
            spec = previous[1]
            choices.append(Choice("", tuple(spec.layers), (), kept_from=previous[0]))
        # A cue at each paragraph's first word naming it (headings are not spoken).
        cued: set[tuple[str, int]] = set()
        for m in heard:
            if m.kind != "cue" or m.heading or (m.name, m.line) in cued:
                continue
            cued.add((m.name, m.line))
            cue = words.cues[m.name]
            cue_specs.append(
                CueSpec(
                    layer=cue.name,
                    action=cue.action,
                    at_text=m.word.lower().replace("’", "'"),
                    nth=m.nth,
                )
            )
        for name in dict.fromkeys(m.name for m in heard if m.kind == "cue" and not m.heading):
            choices.append(
                Choice(
                    name,
                    (name,),
                    _said(m for m in heard if m.kind == "cue" and m.name == name and not m.heading),
                    cue=True,
                )
            )
        negated = [m for m in matches if m.negated]
        if negated:
            choices.append(Choice("", (), _said(negated), negated=True))
        key = scene.name.lower()
        if key in scenes:  # a heading used twice: one place for both
            spec = SceneSpec({**scenes[key].layers, **spec.layers}, spec.fade_s)
            choices = [*why[key], *choices]
        scenes[key] = spec
        why[key] = tuple(choices)
        used |= set(spec.layers)
        if weight or previous is None:  # a scene that names nothing keeps where its place was named
            previous = (scene.name or "(untitled)", spec, tuple(choices))
    # Scenes not in the script (none: every heading is here) and a scriptless track: the first place.
    scenes.setdefault("default", next(iter(scenes.values()), quiet))
    used |= set(scenes["default"].layers)
    layers = {name: layer for name, layer in words.layers.items() if name in used}
    for cue_spec in cue_specs:
        layers[cue_spec.layer] = words.cues[cue_spec.layer].layer
    return Preset(
        name="auto",
        description="chosen by the script's words",
        layers=layers,
        scenes=scenes,
        cues=tuple(cue_specs),
        fade_s=words.fade_s,
        path=words.paths[-1] if words.paths else WORDS_FILE,
        why=why,
    )


def _place_spec(places: Sequence[tuple[Place, float]], words: WordList) -> SceneSpec:
    """The layers of these places (with each place's offset); a layer two places play takes the louder."""
    gains: dict[str, float] = {}
    for place, offset in places:
        for layer, db in place.play.items():
            gains[layer] = max(gains.get(layer, -1e9), db + offset)
    return SceneSpec(gains, words.fade_s)


def _said(matches) -> tuple[tuple[str, int], ...]:
    """(word, line) of each match, once each."""
    return tuple(dict.fromkeys((m.word, m.line) for m in matches))


def explain(timeline_scenes: Sequence[Any]) -> list[str]:
    """One line per scene: what plays there and the words that chose it (``render --explain``)."""
    out = []
    for scene in timeline_scenes:
        parts = []
        for c in scene.why:
            said = ", ".join(f"{w!r} (line {n})" for w, n in c.words)
            if c.negated:
                parts.append(f"not heard: {said}")
            elif c.kept_from:
                parts.append(f"{', '.join(c.layers)}: kept from {c.kept_from!r} (names no place)")
            elif c.cue:
                parts.append(f"{c.place} cue at {said}")
            elif not c.words:
                parts.append(f"{', '.join(c.layers)}: a quiet bed (names no place)")
            else:
                level = f" at {c.level_db:+g} dB (named once)" if c.level_db else ""
                parts.append(f"{', '.join(c.layers)}{level} <- {c.place}: {said}")
        name = scene.name or "(untitled)"
        if not parts:  # a hand-made preset: its scene's layers
            preset = getattr(scene, "preset", "")
            parts = [
                (", ".join(scene.layers) or "silence") + (f" (preset {preset!r})" if preset else "")
            ]
        out.append(f"{name}: " + "; ".join(parts))
    return out


def choose(name: str, script: Script | None, words: str | Path | None = None) -> str | Preset:
    """What ``--soundscape NAME`` plays: ``auto`` is the preset the script's words choose
    (``default`` without a script); any other name is returned as it is."""
    if name != "auto":
        return name
    if script is None:
        return "default"
    return auto_preset(script, load_words(words))


def explain_script(
    name: str,
    script: Script,
    words: str | Path | None = None,
    layers: Sequence[str] | None = None,
) -> list[str]:
    """``render --explain``: one line per scene of what ``--soundscape NAME`` plays there, and why;
    with ``layers`` (``--layers``), only what of it those layers play."""
    from .preset import load_preset  # noqa: PLC0415 - reason: a named preset only; auto needs none

    if name == "none":
        return [f"{scene.name or '(untitled)'}: no soundscape" for scene in script.scenes]
    chosen = choose(name, script, words)
    preset = chosen if isinstance(chosen, Preset) else load_preset(chosen)
    spans = []
    for scene in script.scenes:
        spec = preset.scenes.get(scene.name.lower(), preset.scenes["default"])
        why = preset.why.get(scene.name.lower(), ())
        cued = [c.place for c in why if c.cue]
        heard = (*spec.layers, *cued)
        if layers is not None:  # the render plays only these: say nothing of the others
            heard = tuple(n for n in heard if n in layers)
            kept = [replace(c, layers=tuple(n for n in c.layers if n in layers)) for c in why]
            why = tuple(c for c in kept if c.layers or c.negated)
        spans.append(_Explained(scene.name, heard, why, preset.name))
    return explain(spans)


@dataclass(frozen=True)
class _Explained:
    name: str
    layers: tuple[str, ...]
    why: tuple[Choice, ...]
    preset: str


def describe_words(words: WordList) -> str:
    """``meditation soundscapes auto``: each place and cue, what it plays and the words that name it."""
    out = [f"words: {', '.join(str(p) for p in words.paths)}", "places:"]
    for place in words.places.values():
        plays = ", ".join(f"{k} {v:+g} dB" if v else k for k, v in place.play.items())
        named = ", ".join(place.words) or "(a first scene that names nothing)"
        out.append(f"  {place.name}: {plays} <- {named}")
    out.append("cues (at the word):")
    for cue in words.cues.values():
        out.append(
            f"  {cue.name}: {cue.layer.kind or cue.name} {cue.action} <- {', '.join(cue.words)}"
        )
    return "\n".join(out)
