"""Voice chain settings: the ``VoiceFx`` fields, the named styles and the
``--voice-fx`` grammar. Pure data, no numpy: ``settings`` imports it to check
a value before any synthesis. The chain that runs is ``voicechain``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SettingsError

__all__ = [
    "VoiceFx",
    "STYLES",
    "ROOMS",
    "VOICE_TUNING",
    "parse_voice_fx",
    "voice_fx_from",
    "check_for_sample_rate",
]


@dataclass(frozen=True)
class VoiceFx:
    """Settings of the voice chain (units in the names; 0 dB or ratio 1 turns a stage off)."""

    highpass_hz: float = 90.0
    """Cut below this (12 dB/octave): the voice has nothing useful there."""
    warmth_db: float = 1.5
    """Gain of a broad bell at ``warmth_hz`` (low-mid body)."""
    warmth_hz: float = 220.0
    """Centre of the warmth bell."""
    deess_hz: float = 5000.0
    """Sibilance band: everything above this is de-essed."""
    deess_threshold_db: float = -28.0
    """Level (dBFS) above which the sibilance band is compressed; the voice sits at −20 dBFS RMS."""
    deess_ratio: float = 4.0
    """Compression ratio of the de-esser (1 turns it off)."""
    level_threshold_db: float = -34.0
    """Leveler threshold (dBFS): nearly all speech is above it, so the ratio applies to sentence levels."""
    level_ratio: float = 3.0
    """Leveler ratio (1 turns it off)."""
    level_attack_ms: float = 40.0
    """Leveler attack: slow enough to leave consonants their shape."""
    level_release_ms: float = 600.0
    """Leveler release: about a phrase, so the gain follows sentences rather than syllables."""
    reverb: str = "room"
    """``room``, ``hall`` or ``none``."""
    reverb_mix: float = 0.25
    """Reverb return level (0..1; 0.25 puts the room about 16 dB under the voice)."""

    def replace(self, **changes: Any) -> VoiceFx:
        """A validated copy with some fields changed."""
        return _checked(dataclasses.replace(self, **changes))


STYLES: dict[str, VoiceFx] = {
    "gentle": VoiceFx(),
    "room": VoiceFx(),
    "hall": VoiceFx(reverb="hall", reverb_mix=0.22),
    "dry": VoiceFx(reverb="none"),
}
"""Named chains for ``--voice-fx``; ``none`` turns the chain off."""

VOICE_TUNING: dict[str, dict[str, float]] = {
    # Measured on the dream's first eight sentences at rate 0.9 (tests/test_voicefx.py):
    # heart carries 5.5 dB more energy above 5 kHz than joe, with its sibilance
    # higher. With joe's settings its de-esser took the 6-12 kHz band down by only
    # 4.9 dB while cutting 5.5 dB from 4-6 kHz (vowel brightness), and the leveler
    # narrowed the sentence-to-sentence spread to 0.67 of dry against joe's 0.50.
    # Here: 6-12 kHz -7.1 dB (joe -7.1), 4-6 kHz -1.6 dB, spread 0.60 of dry.
    "hibari:heart": {"deess_hz": 6000.0, "deess_threshold_db": -32.0, "level_ratio": 4.0},
}
"""Per-voice changes to every named chain, applied before the preset's and the user's."""

# Freeverb settings per space: size sets the decay, damping darkens it.
ROOMS = {
    "room": dict(room_size=0.35, damping=0.6, width=0.8),
    "hall": dict(room_size=0.72, damping=0.45, width=1.0),
}
_RANGES = {
    "highpass_hz": (20.0, 300.0),
    "warmth_db": (-6.0, 6.0),
    "warmth_hz": (80.0, 600.0),
    "deess_hz": (2000.0, 12000.0),
    "deess_threshold_db": (-70.0, 0.0),
    "deess_ratio": (1.0, 20.0),
    "level_threshold_db": (-70.0, 0.0),
    "level_ratio": (1.0, 20.0),
    "level_attack_ms": (0.1, 1000.0),
    "level_release_ms": (1.0, 5000.0),
    "reverb_mix": (0.0, 1.0),
}


def _checked(fx: VoiceFx) -> VoiceFx:
    for name, (low, high) in _RANGES.items():
        value = getattr(fx, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not low <= value <= high
        ):
            raise SettingsError(
                f"voice fx: {name} = {value!r} is out of range ({low:g} to {high:g})"
            )
    if fx.reverb not in (*ROOMS, "none"):
        raise SettingsError(f"voice fx: reverb {fx.reverb!r} is not one of room, hall, none")
    return fx


def voice_fx_from(base: VoiceFx, values: Mapping[str, Any], where: str = "voice fx") -> VoiceFx:
    """``base`` with the given fields changed; unknown names and bad values raise SettingsError."""
    known = {f.name: f for f in dataclasses.fields(VoiceFx)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise SettingsError(f"{where}: unknown setting {key!r} (known: {', '.join(known)})")
        default = getattr(base, key)
        if isinstance(default, float):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise SettingsError(f"{where}: {key} must be a number, not {value!r}") from None
        else:
            value = str(value)
        changes[key] = value
    return _checked(dataclasses.replace(base, **changes))


def parse_voice_fx(
    text: str, preset: Mapping[str, Any] | None = None, voice: str | None = None
) -> VoiceFx | None:
    """The chain a ``--voice-fx`` value asks for; None for ``none``.

    ``auto`` is the gentle chain with the soundscape preset's ``[voice]``
    table applied; otherwise a style name (``gentle``, ``room``, ``hall``,
    ``dry``), optionally followed by ``,key=value`` overrides, e.g.
    ``hall,reverb_mix=0.25``. Each style starts from ``VOICE_TUNING`` for
    ``voice`` (``engine:name``), when it has an entry.
    """
    raw = str(text).strip()
    if raw.lower() == "none":
        return None
    tuning = VOICE_TUNING.get(voice or "", {})
    if raw.lower() == "auto":
        base = voice_fx_from(STYLES["gentle"], tuning, "voice tuning")
        return voice_fx_from(base, dict(preset or {}), "soundscape [voice]")
    style, *pairs = [p.strip() for p in raw.split(",")]
    if style.lower() not in STYLES:
        raise SettingsError(
            f"--voice-fx {raw!r}: unknown style {style!r} (known: auto, none, {', '.join(STYLES)})"
        )
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SettingsError(
                f"--voice-fx {raw!r}: write overrides as key=value, e.g. hall,reverb_mix=0.2"
            )
        values[key.strip()] = value.strip()
    base = voice_fx_from(STYLES[style.lower()], tuning, "voice tuning")
    return voice_fx_from(base, values, f"--voice-fx {raw!r}")


def check_for_sample_rate(fx: VoiceFx | None, sample_rate: int, where: str = "--voice-fx") -> None:
    """Raise SettingsError (one line) unless every filter of ``fx`` lies below the Nyquist frequency.

    Checked before synthesis: the chain builds its filters only when the
    first speech reaches it, so a bad pair would fail after the speech was spoken.
    """
    if fx is None:
        return
    nyquist = sample_rate / 2
    stages = [
        ("highpass_hz", True),
        ("warmth_hz", fx.warmth_db != 0),
        ("deess_hz", fx.deess_ratio > 1),
    ]
    for name, used in stages:
        hz = getattr(fx, name)
        if used and hz >= nyquist:
            advice = (
                "lower deess_hz or turn the de-esser off (deess_ratio=1)"
                if name == "deess_hz"
                else f"lower {name}"
            )
            raise SettingsError(
                f"{where}: {name} = {hz:g} Hz needs a sample rate above {2 * hz:g} Hz, "
                f"and the sample rate is {sample_rate} Hz; raise --sample-rate, {advice}, "
                "or use --voice-fx none"
            )
