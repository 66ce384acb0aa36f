"""Voice engines: look-ups over the registry (``registry.py``) that each engine joins by registering itself.

A voice is named ``engine:name`` (``piper:joe``, ``pyttsx3:gmw/en-US``); an
engine name alone picks that engine's default voice.
"""

from __future__ import annotations

import functools

from ..errors import VoiceError
from . import hibari_engine, piper_engine, pyttsx3_engine  # noqa: F401 - importing an engine registers it
from .registry import ENGINES, VoiceEngine, VoiceInfo, register_engine

__all__ = [
    "VoiceEngine",
    "VoiceInfo",
    "ENGINES",
    "register_engine",
    "list_voices",
    "resolve_voice",
    "load_voice",
    "DEFAULT_VOICE",
]

DEFAULT_VOICE = "piper:joe"


def list_voices() -> list[str]:
    """Every usable voice on this machine as ``engine:name``."""
    found: list[str] = []
    # The default voice's engine first, then in registration order (import order is no contract).
    default_engine = DEFAULT_VOICE.partition(":")[0]
    for name, cls in sorted(ENGINES.items(), key=lambda item: item[0] != default_engine):
        found.extend(f"{name}:{voice}" for voice in cls.voices())
    return found


def resolve_voice(voice_id: str) -> str:
    """Normalize ``engine`` or ``engine:name`` to a known ``engine:name``, or raise VoiceError."""
    engine, colon, voice = voice_id.strip().partition(":")
    engine = engine.lower()
    cls = ENGINES.get(engine)
    if cls is None:
        raise VoiceError(f"unknown voice {voice_id!r}; known voices: {_known()}")
    if colon and not voice.strip():
        raise VoiceError(
            f"voice {voice_id!r} has no name after ':'; write {engine} for its default voice "
            f"or {engine}:NAME (see 'meditation voices')"
        )
    if not voice:
        voice = cls.default_voice()
    # Voice names are case-insensitive (eSpeak lists gmw/en-us; people write en-US).
    match = next((v for v in cls.voices() if v.lower() == voice.lower()), None)
    if match is None:
        refusal = cls.refusal(voice)
        if refusal is not None:
            installed = ", ".join(f"{engine}:{v}" for v in cls.voices()) or "none"
            raise VoiceError(f"{refusal}; installed {engine} voices: {installed}")
        raise VoiceError(f"unknown voice {voice_id!r}; known voices: {_known(engine)}")
    return f"{engine}:{match}"


def _known(engine: str = "") -> str:
    """The voices to suggest, the named engine's first (its voices are what the user meant)."""
    voices = sorted(list_voices(), key=lambda v: not v.startswith(f"{engine}:"))
    if len(voices) > 12:
        shown = ", ".join(voices[:12])
        return f"{shown}, … ({len(voices)} in all; see 'meditation voices')"
    return ", ".join(voices) or "none"


@functools.lru_cache(maxsize=4)
def load_voice(voice_id: str) -> VoiceEngine:
    """Load a voice once per process (models are slow to start)."""
    full = resolve_voice(voice_id)
    engine, _, voice = full.partition(":")
    return ENGINES[engine](voice)
