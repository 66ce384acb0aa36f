"""The voice registry: the engine interface and the table a new engine joins by registering itself.

Engines import this module (not the package), like soundscape layers import
``layers/base.py``; ``meditation.voices`` imports every engine and offers the
look-ups (``list_voices``, ``resolve_voice``, ``load_voice``).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # numpy only in annotations: `meditation voices` starts without it
    import numpy as np

__all__ = ["VoiceEngine", "VoiceInfo", "ENGINES", "register_engine"]

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
    concurrent: ClassVar[bool] = False
    """Whether ``synthesize`` may run in several threads at once (``speech`` then speaks
    segments side by side). Each call's result must depend only on its own arguments."""

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

    def reset(self) -> None:  # noqa: B027 - a hook: engines that keep no state leave it empty
        """Forget state carried between utterances; called once before each render."""

    @abc.abstractmethod
    def synthesize(self, text: str, *, rate: float, seed: int) -> np.ndarray:
        """Speak ``text``: mono float32 at ``sample_rate``, peak below 1.

        ``rate`` scales the speaking rate inside the engine (0.8 = 20 % slower);
        ``seed`` fixes any randomness the engine has, so output is reproducible.
        """
