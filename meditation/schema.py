"""How a setting is declared and read: its Spec, its kind, durations, ranges — one wording for every error.

The settings themselves are declared in ``meditation.settings`` with
:func:`setting`; this module holds the declaration's parts and reads a raw
value (command-line text, front-matter text or a TOML value) by them.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SettingsError

__all__ = [
    "Kind",
    "Role",
    "Use",
    "Spec",
    "setting",
    "EVERYWHERE",
    "read_value",
    "parse_duration_s",
    "format_duration",
    "describe_range",
]


class Kind(str, enum.Enum):
    """How a setting's raw text or TOML value is read."""

    NUMBER = "number"
    INTEGER = "integer"
    BOOL = "bool"
    TEXT = "text"
    DURATION = "duration"
    PATH = "path"
    NAMES = "names"
    """A comma-separated list (or TOML array) of names."""
    DURATIONS = "durations"
    """A comma-separated list (or TOML array) of durations, in seconds."""
    CHOICE = "choice"
    TABLE = "table"
    """Text of ``key=value`` items, or a TOML table (a manifest's), kept as that text."""


class Role(str, enum.Enum):
    """What a path setting is to the file-safety check (see ``meditation.files``)."""

    INPUT = "input"
    OUTPUT = "output"
    OUTPUT_FOLDER = "output folder"


class Use(enum.Flag):
    """Where a setting can be given."""

    RENDER = enum.auto()
    """An option of ``meditation render``."""
    AMBIENT = enum.auto()
    """An option of ``meditation ambient``."""
    FRONT_MATTER = enum.auto()
    """A key of a script's front matter."""
    MANIFEST = enum.auto()
    """A key of a batch manifest (``[defaults]``, ``[matrix]``, ``[[variants]]``)."""
    TIMER = enum.auto()
    """An option of ``meditation timer`` (a sit between bells, see ``meditation.timer``)."""


EVERYWHERE = Use.RENDER | Use.FRONT_MATTER | Use.MANIFEST


@dataclass(frozen=True)
class Spec:
    """One setting's declaration: everything the CLI, the files and the README need to know."""

    name: str
    """Field name in RenderSettings (``lead_in_s``)."""
    key: str
    """Name users write in front matter and manifests (``lead_in``); the option is ``--lead-in``."""
    kind: Kind
    default: Any
    help: str
    """One line, for ``--help`` and the README table."""
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    uses: Use = EVERYWHERE
    role: Role | None = None
    audio: bool = True
    """False when the setting does not change the rendered audio (batch resume ignores it)."""
    optional: bool = False
    """Accepts ``none`` (and None) for 'not set'."""
    short: str | None = None
    """A short option as well (``-o``)."""
    level: str | None = None
    """A path that may end in ``:LEVEL_DB`` (``--bed FILE[:LEVEL]``): the key of the level it sets."""
    ambient_help: str = ""
    """The line for ``ambient --help`` where ``help`` speaks of a script or a voice."""
    timer_help: str = ""
    """The line for ``timer --help`` where ``help`` speaks of a script's narration or scenes."""

    @property
    def option(self) -> str:
        """The long command-line option (``--lead-in``), or ``--no-cache`` style for flags that default on."""
        if self.kind is Kind.BOOL and self.default is True:
            return "--no-" + self.key.replace("_", "-")
        return "--" + self.key.replace("_", "-")


def setting(
    default: Any,
    help: str,
    *,
    kind: Kind | None = None,
    key: str | None = None,
    unit: str = "",
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] = (),
    uses: Use = EVERYWHERE,
    role: Role | None = None,
    audio: bool = True,
    optional: bool = False,
    short: str | None = None,
    level: str | None = None,
    ambient_help: str = "",
    timer_help: str = "",
) -> Any:
    """Declare one field of RenderSettings (a ``dataclasses.field`` carrying its Spec's parts)."""
    meta = dict(
        kind=kind,
        key=key,
        help=help,
        unit=unit,
        low=low,
        high=high,
        choices=choices,
        uses=uses,
        role=role,
        audio=audio,
        optional=optional,
        short=short,
        level=level,
        ambient_help=ambient_help,
        timer_help=timer_help,
    )
    return field(default=default, metadata={"setting": meta})


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(h|min|m|s|ms)")
_DURATION_UNIT_S = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration_s(text: Any) -> float:
    """Seconds from 90, '90', '90s', '2.5m', '8h', '1h30m' or '500ms'."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            value = float(raw)
        else:
            parts = _DURATION_PART.findall(raw)
            if not parts or _DURATION_PART.sub("", raw).strip():
                raise ValueError(text)
            value = sum(float(v) * _DURATION_UNIT_S[u] for v, u in parts)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def format_duration(seconds: float) -> str:
    """'45 s', '10 min', '6 h', '1 h 30 min' — for messages and the README."""
    if seconds < 60 or seconds % 60:
        return f"{seconds:g} s"
    if seconds < 3600 or seconds % 3600:
        h, m = divmod(int(seconds) // 60, 60)
        return f"{h} h {m} min" if h else f"{m} min"
    return f"{int(seconds) // 3600} h"


_WRITE_AS = {
    Kind.NUMBER: "a number",
    Kind.INTEGER: "a whole number",
    Kind.BOOL: "true or false",
    Kind.TEXT: "text",
    Kind.DURATION: "a duration such as 90s, 20m or 8h",
    Kind.PATH: "a file path",
    Kind.NAMES: "a list of names such as river,wind",
    Kind.DURATIONS: "a list of durations such as 5m,12m",
    Kind.CHOICE: "one of the listed choices",
    Kind.TABLE: "text such as a=1,b=2 or a table",
}


def read_value(spec: Any, value: Any, label: str) -> Any:
    """Read one raw value (command-line text, front-matter text or a TOML value) into ``spec``'s type.

    ``spec`` is a ``meditation.settings.Spec``. Raises SettingsError naming the
    setting as ``label`` and quoting the value as written:
    ``rate 3 is out of range (0.5 to 2 ×)``.
    """
    if value is None or (
        spec.optional and isinstance(value, str) and value.strip().lower() == "none"
    ):
        if spec.optional:
            return None
        raise SettingsError(f"{label} needs a value ({_WRITE_AS[spec.kind]})")
    try:
        typed = _READERS[spec.kind](value, spec)
    except (TypeError, ValueError, OverflowError):
        choices = f" ({', '.join(spec.choices)})" if spec.choices else ""
        raise SettingsError(
            f"{label} must be {_WRITE_AS[spec.kind]}{choices}, not {_shown(value)}"
        ) from None
    _check_range(spec, typed, value, label)
    return typed


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _read_number(value: Any, spec: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _read_integer(value: Any, spec: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[+-]?\d+\s*", value):
            raise ValueError(value)
    return int(value)


def _read_bool(value: Any, spec: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(value)


def _read_text(value: Any, spec: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _read_path(value: Any, spec: Any) -> Path | None:
    if isinstance(value, bool) and spec.optional and spec.role is Role.OUTPUT:
        # `plot = true` in a manifest: the default file beside the output (see publish.beside_output).
        return Path("true") if value else None
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise TypeError(value)
    return Path(str(value))


def _read_names(value: Any, spec: Any) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    if not all(isinstance(v, str) for v in items):
        raise TypeError(value)
    names = tuple(dict.fromkeys(v.strip() for v in items if v.strip()))
    if not names:
        raise ValueError(value)
    return names


def _read_durations(value: Any, spec: Any) -> tuple[float, ...]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    if isinstance(value, (list, tuple)) and not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items
    ):
        raise TypeError(value)
    times = tuple(parse_duration_s(v) for v in items if str(v).strip())
    if not times:
        raise ValueError(value)
    return times


def _read_choice(value: Any, spec: Any) -> str:
    text = str(value).strip().lower()
    if text not in spec.choices:
        raise ValueError(value)
    return text


def _read_table(value: Any, spec: Any) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict) or not value:
        raise TypeError(value)

    def item(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(map(item, v)) + "]"
        if isinstance(v, (dict, bool)) or v is None:
            raise TypeError(v)
        return str(v)

    return ", ".join(f"{k}={item(v)}" for k, v in value.items())


_READERS = {
    Kind.NUMBER: _read_number,
    Kind.INTEGER: _read_integer,
    Kind.BOOL: _read_bool,
    Kind.TEXT: _read_text,
    Kind.DURATION: lambda value, spec: parse_duration_s(value),
    Kind.PATH: _read_path,
    Kind.NAMES: _read_names,
    Kind.DURATIONS: _read_durations,
    Kind.CHOICE: _read_choice,
    Kind.TABLE: _read_table,
}


def _check_range(spec: Any, typed: Any, raw: Any, label: str) -> None:
    if spec.low is None and spec.high is None:
        return
    low = -math.inf if spec.low is None else spec.low
    high = math.inf if spec.high is None else spec.high
    if not (low <= typed <= high):
        raise SettingsError(f"{label} {_raw_text(raw)} is out of range ({describe_range(spec)})")


def _raw_text(raw: Any) -> str:
    """The value as the user wrote it (``7h`` stays ``7h``)."""
    return (
        raw.strip() if isinstance(raw, str) else f"{raw:g}" if isinstance(raw, float) else str(raw)
    )


def describe_range(spec: Any) -> str:
    """'0.5 to 2 ×', '1 s to 24 h', 'at least 0'."""
    show = format_duration if spec.kind is Kind.DURATION else (lambda v: f"{v:g}")
    unit = f" {spec.unit}" if spec.unit and spec.kind is not Kind.DURATION else ""
    if spec.high is None or (spec.kind is Kind.INTEGER and spec.high >= 2**62):
        return f"at least {show(spec.low)}{unit}"
    return f"{show(spec.low)} to {show(spec.high)}{unit}"
