"""Voice engines: a registry that a new engine joins by registering itself.

A voice is named ``engine:name`` (``piper:joe``, ``pyttsx3:gmw/en-US``); an
engine name alone picks that engine's default voice.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # numpy only in annotations: `meditation voices` starts without it
    import numpy as np

from ..errors import VoiceError

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

ENGINES: dict[str, type[VoiceEngine]] = {}


def register_engine(name: str) -> Callable[[type[VoiceEngine]], type[VoiceEngine]]:
    """Class decorator: make an engine available as ``name:voice``."""

    def decorate(cls: type[VoiceEngine]) -> type[VoiceEngine]:
        cls.engine = name
        ENGINES[name] = cls
        return cls

    return decorate


@dataclasses.dataclass(frozen=True)
class VoiceInfo:
    """What ``meditation voices`` shows of a voice, known without loading its model."""

    language: str = ""
    """Language tag (``en-US``); empty when the engine does not say."""
    accent: str = ""
    """Accent in words (``American``); empty when unknown."""
    gender: str = ""
    """``female`` or ``male`` where the voice's maker says; empty when unknown."""
    sample_rate: int = 0
    """Native sample rate of the voice (Hz); 0 when unknown."""
    neural: bool = False
    """A neural model (natural prosody) rather than formant or concatenative synthesis."""


class VoiceEngine(abc.ABC):
    """One loaded voice of one engine. Load once per process; synthesis is stateless."""

    engine: ClassVar[str] = ""

    def __init__(self, voice: str):
        self.voice = voice

    @property
    def voice_id(self) -> str:
        return f"{self.engine}:{self.voice}"

    @classmethod
    @abc.abstractmethod
    def voices(cls) -> list[str]:
        """Names of the voices this engine can speak with on this machine (empty if unusable)."""

    @classmethod
    @abc.abstractmethod
    def default_voice(cls) -> str:
        """The voice used when only the engine is named."""

    @classmethod
    def describe(cls, voice: str) -> VoiceInfo:
        """Language, gender, sample rate and kind of ``voice``; fast, without loading a model."""
        return VoiceInfo()

    @classmethod
    def phonemes(cls, word: str, ipa: str) -> str | None:
        """``word`` said as the IPA ``ipa``, in the notation this engine reads in its text;
        None when it takes no phonemes (the lexicon then gives it the respelling)."""
        return None

    @classmethod
    def refusal(cls, voice: str) -> str | None:
        """Why a voice the engine knows of cannot be used here (e.g. not installed), or None."""
        return None

    @property
    @abc.abstractmethod
    def sample_rate(self) -> int:
        """Native sample rate of what ``synthesize`` returns."""

    def reset(self) -> None:
        """Forget state carried between utterances; called once before each render."""

    @abc.abstractmethod
    def synthesize(self, text: str, *, rate: float, seed: int) -> np.ndarray:
        """Speak ``text``: mono float32 at ``sample_rate``, peak below 1.

        ``rate`` scales the speaking rate inside the engine (0.8 = 20 % slower);
        ``seed`` fixes any randomness the engine has, so output is reproducible.
        """


def list_voices() -> list[str]:
    """Every usable voice on this machine as ``engine:name``."""
    found: list[str] = []
    for name, cls in ENGINES.items():
        found.extend(f"{name}:{voice}" for voice in cls.voices())
    return found


def resolve_voice(voice_id: str) -> str:
    """Normalize ``engine`` or ``engine:name`` to a known ``engine:name``, or raise VoiceError."""
    engine, _, voice = voice_id.strip().partition(":")
    engine = engine.lower()
    cls = ENGINES.get(engine)
    if cls is None:
        raise VoiceError(f"unknown voice {voice_id!r}; known voices: {_known()}")
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


# Importing an engine module registers it; a new engine joins by adding a line here.
from . import espeak_engine, hibari_engine, piper_engine  # noqa: E402,F401
