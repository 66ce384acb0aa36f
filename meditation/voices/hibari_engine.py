"""hibari, a second neural voice: ``heart``, American English, female, 24 kHz.

The ``hibari-tts`` wheel carries the weights of one voice (``heart``, distilled
from Kokoro-82M's ``af_heart``); its other voices are downloaded from the
network on first use. A meditation renders offline, so only voices whose
weights are already on this machine are listed or loaded: hibari's own
``voice_path(name, download_missing=False)`` decides, and the model path it
returns is handed to ``Hibari(model=...)`` so hibari never looks for a
download itself. Any other hibari voice is refused before synthesis.

hibari draws its noise from a numpy generator we seed, and its network has no
random nodes, so the same text, rate and seed give the same samples.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from ..errors import VoiceError
from .piper_engine import _no_telemetry
from .registry import VoiceEngine, VoiceInfo, register_engine

# Our rate -> hibari's ``speed``, measured (benchmarks/calibrate_hibari.py): the
# spoken duration (trimmed as the speech stage trims it) of four held-in
# paragraphs, averaged, on a 0.01 grid of speeds, then inverted at each rate.
# hibari's durations move in steps (whole 12.5 ms frames per phoneme), so the
# speed is not proportional to the rate: between speeds 1.33 and 1.34 the
# duration drops by 15 %, and rates 1.3-1.35 land up to 6 % off 1/rate.
_SPEED_BY_RATE = (
    (0.50, 0.50), (0.55, 0.57), (0.60, 0.59), (0.65, 0.66), (0.70, 0.68), (0.75, 0.78),
    (0.80, 0.80), (0.85, 0.81), (0.90, 0.85), (0.95, 0.90), (1.00, 1.00), (1.05, 1.11),
    (1.10, 1.19), (1.15, 1.22), (1.20, 1.32), (1.25, 1.33), (1.30, 1.33), (1.35, 1.34),
    (1.40, 1.34), (1.45, 1.34), (1.50, 1.43), (1.55, 1.57), (1.60, 1.65), (1.65, 1.78),
    (1.70, 1.93), (1.75, 1.99), (1.80, 2.00), (1.85, 2.10), (1.90, 2.20), (1.95, 2.40),
    (2.00, 2.60),
)  # fmt: skip


@register_engine("hibari")
class HibariEngine(VoiceEngine):
    """A hibari voice whose weights are installed, run on the CPU with onnxruntime."""

    concurrent = True
    """``synthesize`` may run in several threads at once on one ``Hibari``: each
    call's state is its own (the noise generator is made from the call's seed,
    the G2P keeps no state between words), and onnxruntime runs one session
    concurrently, each run on its calling thread. The only shared state is
    made lazily on first use (the G2P, its out-of-vocabulary net): both are
    made here, before any thread speaks. Speed (``benchmarks/bench_speech_voice.py``,
    the dream's 30 segments, 185 s of speech, 1.0 s of CPU): on the shared
    2-core machine at load 3.5-10, two jobs ran at 0.89-0.90x one job's
    speed for the same CPU time; heart's takes are short (35 ms of CPU each,
    half of it numpy DSP), and no gain showed. Piper, measured the same way
    at load 11, ran at 1.40x with two jobs. An idle measurement is owed."""

    def __init__(self, voice: str):
        super().__init__(voice)
        _no_telemetry()  # hibari runs onnxruntime too
        path = _installed_model(voice)
        if path is None:
            raise VoiceError(_not_installed(voice))
        try:
            from hibari import Hibari  # noqa: PLC0415 - start-up: it imports numpy and scipy
        except ImportError as exc:  # pragma: no cover - install problem
            raise VoiceError(f"hibari voice {voice!r} cannot be loaded: {exc}") from None
        # One thread: the other core resamples and mixes while the voice speaks.
        self._tts = Hibari(voice=voice, model=path, threads=1)
        _ = self._tts.g2p.oov  # made now: lazily, two threads could each make their own

    @classmethod
    def voices(cls) -> list[str]:
        return [name for name in _registry() if _installed_model(name) is not None]

    @classmethod
    def default_voice(cls) -> str:
        return "heart"

    @classmethod
    def describe(cls, voice: str) -> VoiceInfo:
        entry = _registry().get(voice, {})
        return VoiceInfo(
            language=entry.get("language", ""),
            accent=entry.get("accent", ""),
            gender=entry.get("gender", ""),
            sample_rate=24000,
            neural=True,
        )

    @classmethod
    def phonemes(cls, word: str, ipa: str) -> str | None:
        # hibari's G2P takes a word's phonemes as a Markdown link: [word](/phonemes/).
        return f"[{word}](/{misaki_phonemes(ipa)}/)"

    @classmethod
    def refusal(cls, voice: str) -> str | None:
        """Why ``voice`` cannot be used, when hibari knows it but its weights are not here."""
        known = {name.lower(): name for name in _registry()}
        name = known.get(voice.lower())
        if name is None or _installed_model(name) is not None:
            return None
        return _not_installed(name)

    @property
    def sample_rate(self) -> int:
        return int(self._tts.sample_rate)

    def synthesize(self, text: str, *, rate: float, seed: int) -> np.ndarray:
        import numpy as np  # noqa: PLC0415 - start-up: listing voices runs without numpy

        audio = self._tts(text, speed=speed_for_rate(rate), seed=seed)
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if peak > 0.98:
            audio = audio * np.float32(0.98 / peak)
        return audio


def speed_for_rate(rate: float) -> float:
    """hibari's ``speed`` for our speaking rate, interpolated in the measured table."""
    rates = [r for r, _ in _SPEED_BY_RATE]
    speeds = [s for _, s in _SPEED_BY_RATE]
    if rate <= rates[0]:
        return speeds[0] * rate / rates[0]
    if rate >= rates[-1]:
        return speeds[-1] * rate / rates[-1]
    i = next(k for k in range(1, len(rates)) if rates[k] >= rate)
    t = (rate - rates[i - 1]) / (rates[i] - rates[i - 1])
    return speeds[i - 1] + t * (speeds[i] - speeds[i - 1])


# IPA as eSpeak NG writes it -> the misaki alphabet hibari's model reads (one
# letter per diphthong and affricate, ɹ for r, ɡ for g, r-coloured vowels split).
_MISAKI = (
    ("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"), ("əʊ", "Q"),
    ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɝ", "ɜɹ"), ("ɚ", "əɹ"), ("r", "ɹ"), ("g", "ɡ"), ("ɫ", "l"),
)  # fmt: skip


def misaki_phonemes(ipa: str) -> str:
    """eSpeak NG IPA in the misaki alphabet of hibari's model."""
    for ipa_form, misaki in _MISAKI:
        ipa = ipa.replace(ipa_form, misaki)
    return ipa


def _not_installed(voice: str) -> str:
    return (
        f"hibari voice {voice!r} is not installed (only voices whose weights are on this "
        "machine are used; nothing is downloaded)"
    )


def _installed_model(voice: str) -> str | None:
    """The model file of an installed voice, or None; never downloads."""
    module = _voices_module()
    if module is None:
        return None
    try:
        return str(module.voice_path(voice, download_missing=False))
    except (FileNotFoundError, ValueError):
        return None


def _registry() -> dict:
    module = _voices_module()
    return dict(module.VOICES) if module is not None else {}


@functools.lru_cache(maxsize=1)
def _voices_module():
    """hibari's ``voices`` module, loaded on its own.

    Importing it the usual way runs the package's ``__init__``, which imports
    numpy and scipy (half a second): ``meditation voices`` must list without
    them. The module itself needs only the standard library.
    """
    try:
        spec = importlib.util.find_spec("hibari")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "voices.py")
    loader_spec = importlib.util.spec_from_file_location("_meditation_hibari_voices", path)
    if loader_spec is None or loader_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(module)
    except (OSError, ValueError, SyntaxError):  # pragma: no cover - a damaged install
        return None
    return module
