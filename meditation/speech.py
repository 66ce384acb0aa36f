"""Stage 3: speak each segment and bring it to the mix rate.

Speech is resampled with soxr (a band-limited, high-quality resampler), never
by changing playback speed, and trimmed of the engine's own leading and
trailing silence so the timeline knows where words really are.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import soxr

from .cache import SpeechCache
from .progress import progress
from .voices import ENGINES, VoiceEngine, load_voice, resolve_voice

if TYPE_CHECKING:
    from .lexicon import Lexicon

__all__ = ["synthesize", "trim_silence", "text_seed"]

_TRIM_THRESHOLD_DB = -45.0
_TRIM_MARGIN_S = 0.03


def text_seed(text: str) -> int:
    """The engine seed for a text: fixed per text, so the cache can ignore the render seed."""
    return zlib.crc32(text.encode("utf-8"))


def trim_silence(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut leading/trailing audio quieter than -45 dB re. peak, keeping a 30 ms margin."""
    if len(audio) == 0:
        return audio
    peak = float(np.max(np.abs(audio)))
    if peak <= 0:
        return audio[:0]
    loud = np.flatnonzero(np.abs(audio) > peak * 10 ** (_TRIM_THRESHOLD_DB / 20))
    margin = int(_TRIM_MARGIN_S * sample_rate)
    start = max(0, int(loud[0]) - margin)
    end = min(len(audio), int(loud[-1]) + 1 + margin)
    out = audio[start:end].copy()
    # Short fades so a trimmed edge never clicks.
    fade = min(len(out) // 2, int(0.01 * sample_rate))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        out[:fade] *= ramp
        out[-fade:] *= ramp[::-1]
    return out


def synthesize(
    texts: Sequence[str],
    *,
    voice: str,
    rate: float,
    sample_rate: int,
    cache: SpeechCache | None = None,
    finish_with: Callable[[np.ndarray, int], np.ndarray] | None = None,
    each: Callable[[np.ndarray], object] | None = None,
    lexicon: Lexicon | None = None,
) -> list[np.ndarray]:
    """Speak every text; mono float32 arrays at ``sample_rate`` in the same order.

    ``each(audio)``, if given, is called with every finished segment in
    order as soon as it is ready (on this thread), so later stages can
    start while the engine speaks on.

    Resampling (and ``finish_with(audio, sample_rate)``, if given) of one
    segment runs in a thread while the engine speaks the next (both release
    the GIL in their native code). The cache holds trimmed, resampled audio
    (before ``finish_with``), and the engine is loaded only on the first
    miss: a render whose speech is all cached never starts a voice.

    ``lexicon`` rewrites each text into what the engine is given (respellings,
    phonemes); the seed and the cache key follow that text.
    """

    voice_id = voice if ":" in voice else resolve_voice(voice)
    engine: VoiceEngine | None = None

    def speak(text: str) -> tuple[np.ndarray, int]:
        """The engine's audio for ``text`` and its native sample rate."""
        nonlocal engine
        if engine is None:
            engine = load_voice(voice_id)
            engine.reset()
        return engine.synthesize(text, rate=rate, seed=text_seed(text)), engine.sample_rate

    def finish(audio: np.ndarray, native: int, key: str | None) -> np.ndarray:
        audio = trim_silence(audio, native)
        if native != sample_rate and len(audio):
            audio = soxr.resample(audio, native, sample_rate, quality="HQ").astype(
                np.float32, copy=False
            )
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if cache is not None and key is not None:
            cache.put(key, audio)
        return audio

    def polish(audio: np.ndarray | Future[np.ndarray]) -> np.ndarray:
        if isinstance(audio, Future):
            audio = audio.result()
        return finish_with(audio, sample_rate) if finish_with is not None else audio

    results: list[np.ndarray | Future[np.ndarray]] = []
    told = 0  # results handed to ``each`` so far

    def tell(wait: bool) -> None:
        nonlocal told
        while each is not None and told < len(results):
            a = results[told]
            if isinstance(a, Future):
                if not (wait or a.done()):
                    return
                a = a.result()
            each(a)
            told += 1

    spoken: dict[str, Future[np.ndarray]] = {}  # a text repeated in this script is spoken once
    try:
        with (
            ThreadPoolExecutor(max_workers=1) as pool,
            progress("speech", len(texts), "seg") as bar,
        ):
            phonemes = ENGINES[voice_id.partition(":")[0]].phonemes
            for text in texts:
                if lexicon:
                    text = lexicon.apply(text, phonemes)
                key = (
                    SpeechCache.key(voice_id, rate, text, sample_rate)
                    if cache is not None
                    else None
                )
                audio: np.ndarray | Future[np.ndarray] | None = spoken.get(text)
                if audio is None and cache is not None and key is not None:
                    audio = cache.get(key)
                if audio is None:
                    raw, native = speak(text)
                    audio = spoken[text] = pool.submit(finish, raw, native, key)
                results.append(pool.submit(polish, audio) if finish_with is not None else audio)
                tell(wait=False)
                bar.update(1)
            tell(wait=True)
            return [a.result() if isinstance(a, Future) else a for a in results]
    finally:
        if engine is not None:
            engine.reset()  # release helper processes now, not at interpreter exit
