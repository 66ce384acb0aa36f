"""Stage 3: speak each segment and bring it to the mix rate.

Speech is resampled with soxr (a band-limited, high-quality resampler), never
by changing playback speed, and trimmed of the engine's own leading and
trailing silence so the timeline knows where words really are.

Segments are spoken side by side, ``jobs`` at a time, by engines that can
speak several texts at once (``VoiceEngine.concurrent``), and handed on in
order, so later stages see exactly what a one-at-a-time render gives them:
each take depends only on its text, rate and seed (``text_seed``), never on
what was spoken before or beside it. The speaking runs in threads (one
voice model per process, shared): measured on the dream with Piper, two
threads cost the same CPU time as one session speaking alone, a second
session ~90 MB more memory than a second thread on the shared one, and two
worker processes about 2 s more CPU (start-up and their own model) and
~350 MB each.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

import numpy as np
import soxr

from ._threads import available_cores, core_share, sharing, sharing_cores
from .cache import SpeechCache
from .pace import phrases
from .progress import progress
from .voices import ENGINES, VoiceEngine, load_voice, resolve_voice

if TYPE_CHECKING:
    from .lexicon import Lexicon

__all__ = [
    "synthesize",
    "trim_silence",
    "text_seed",
    "auto_speech_jobs",
    "available_cores",
    "sharing_cores",
]

_TRIM_THRESHOLD_DB = -45.0
_TRIM_MARGIN_S = 0.03
# Memory each sentence spoken at once adds at the peak (Piper: onnxruntime's
# arena holds the decoder's largest tensors of every run in flight). The
# dream's render peaked at 689 MB with one job and 887 MB with two.
_SESSION_MB = 200
_MEMORY_RESERVE_MB = 700  # one render's own peak besides the extra sessions
_MAX_JOBS = 64


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


def _available_memory_mb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def auto_speech_jobs(renders_at_once: int | None = None, *, cores: int | None = None) -> int:
    """How many segments one render speaks at once when ``speech_jobs`` is not set.

    Each of ``renders_at_once`` renders on this machine (batch workers) gets
    an equal share of ``cores`` (default: every core this process may run
    on; both default to what ``sharing_cores`` says, else one render). On one or two cores every core speaks: the mix runs at a lower
    priority meanwhile and makes what is left when the speech ends. From
    three cores up one core is left to the mix, which needs about a quarter
    of the speech's CPU time to keep pace (a rule: only two cores were
    there to measure on). Free memory caps it at one session's peak each.
    """
    share = core_share(renders_at_once, cores)
    if renders_at_once is None:
        renders_at_once = sharing()[0]
    jobs = share if share <= 2 else share - 1
    free = _available_memory_mb()
    if free is not None:
        extra = (free / max(1, renders_at_once) - _MEMORY_RESERVE_MB) // _SESSION_MB
        jobs = min(jobs, 1 + max(0, int(extra)))
    return max(1, min(jobs, _MAX_JOBS))


def _phrased(engine: VoiceEngine, text: str, rate: float, break_s: float) -> np.ndarray:
    """``text`` spoken phrase by phrase, each trimmed, joined by ``break_s`` of silence."""
    native = engine.sample_rate
    gap = np.zeros(int(round(break_s * native)), dtype=np.float32)
    takes: list[np.ndarray] = []
    for phrase in phrases(text):
        take = trim_silence(
            np.asarray(engine.synthesize(phrase, rate=rate, seed=text_seed(phrase)), np.float32),
            native,
        )
        if len(take):
            takes.extend((take, gap))
    return np.concatenate(takes[:-1]) if takes else np.zeros(0, dtype=np.float32)


def synthesize(
    texts: Sequence[str],
    *,
    voice: str,
    rate: float | Sequence[float],
    sample_rate: int,
    cache: SpeechCache | None = None,
    finish_with: Callable[[np.ndarray, int], np.ndarray] | None = None,
    each: Callable[[np.ndarray], object] | None = None,
    jobs: int | None = None,
    lexicon: Lexicon | None = None,
    phrase_break_s: float | Sequence[float] = 0.0,
) -> list[np.ndarray]:
    """Speak every text; mono float32 arrays at ``sample_rate`` in the same order.

    ``each(audio)``, if given, is called with every finished segment in
    order as soon as it is ready (on this thread), so later stages can
    start while the engine speaks on.

    ``jobs`` segments are spoken at once (default: ``auto_speech_jobs()``;
    1 for an engine that cannot speak two texts at once); the audio is the
    same for any number. Segments are handed out in order and at most
    ``2 × jobs`` ahead of the one handed on. Resampling (and
    ``finish_with(audio, sample_rate)``, if given) of one segment runs in a
    thread of its own while the engine speaks the next (both release the
    GIL in their native code). The cache holds trimmed, resampled audio
    (before ``finish_with``), and the engine is loaded only on the first
    miss: a render whose speech is all cached never starts a voice.

    ``lexicon`` rewrites each text into what the engine is given (respellings,
    phonemes); the seed and the cache key follow that text.

    ``rate`` is one rate for every text, or one per text (a wind-down); a
    text said at two rates is spoken twice.

    ``phrase_break_s`` > 0: each text is spoken phrase by phrase (cut after
    its commas, semicolons, colons and dashes, ``pace.phrases``), each phrase
    trimmed, and the phrases joined with that much silence: a slow pace made
    of pauses rather than stretched phonemes (see ``pace.NATURAL_FLOOR``); one
    for every text, or one per text (a wind-down below the voice's floor).
    """

    voice_id = voice if ":" in voice else resolve_voice(voice)
    if lexicon:
        phonemes = ENGINES[voice_id.partition(":")[0]].phonemes
        texts = [lexicon.apply(text, phonemes) for text in texts]
    rates = [float(rate)] * len(texts) if isinstance(rate, (int, float)) else list(rate)
    if len(rates) != len(texts):
        raise ValueError(f"{len(rates)} rates for {len(texts)} texts")
    breaks = (
        [float(phrase_break_s)] * len(texts)
        if isinstance(phrase_break_s, (int, float))
        else list(phrase_break_s)
    )
    if len(breaks) != len(texts):
        raise ValueError(f"{len(breaks)} phrase breaks for {len(texts)} texts")
    wanted = auto_speech_jobs() if jobs is None else max(1, int(jobs))
    engine: VoiceEngine | None = None
    speakers: ThreadPoolExecutor | None = None

    def speak(text: str, rate: float, phrase_break_s: float) -> Future[np.ndarray]:
        nonlocal engine, speakers
        if engine is None or speakers is None:  # the first take: load the voice
            engine = load_voice(voice_id)
            engine.reset()
            n = wanted if engine.concurrent else 1
            speakers = ThreadPoolExecutor(max_workers=n, thread_name_prefix="meditation-speech")
        if phrase_break_s > 0:
            return speakers.submit(_phrased, engine, text, rate, phrase_break_s)
        return speakers.submit(engine.synthesize, text, rate=rate, seed=text_seed(text))

    def finish(raw: Future[np.ndarray], native: int, key: str | None) -> np.ndarray:
        audio = trim_silence(raw.result(), native)
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

    def key_of(text: str, rate: float, phrase_break_s: float) -> str | None:
        if cache is None:
            return None
        # Phrased takes are other audio: their break is part of the key (none: keys as before).
        said = f"{text}\x00phrase break {phrase_break_s:.4f}" if phrase_break_s > 0 else text
        return SpeechCache.key(voice_id, rate, said, sample_rate)

    # Segments looked up in the cache or handed to the speakers, ahead of the one handed on.
    Take = tuple[str, float, float]  # a text, its rate and its phrase break
    ahead: deque[tuple[Take, np.ndarray | None]] = deque()  # (take, its cached audio or None)
    spoken: dict[Take, Future[np.ndarray]] = {}  # raw takes; a take repeated is spoken once
    upcoming = iter(zip(texts, rates, breaks))

    def look_ahead() -> None:
        while len(ahead) < 2 * wanted:
            take = next(upcoming, None)
            if take is None:
                return
            audio = None
            if take not in spoken:
                key = key_of(*take)
                if cache is not None and key is not None:
                    audio = cache.get(key)
                if audio is None:
                    spoken[take] = speak(*take)
            ahead.append((take, audio))

    results: list[np.ndarray | Future[np.ndarray]] = []
    told = 0  # results handed to ``each`` so far

    def tell(block: bool) -> None:
        nonlocal told
        while each is not None and told < len(results):
            a = results[told]
            if isinstance(a, Future):
                if not (block or a.done()):
                    return
                a = a.result()
            each(a)
            told += 1

    finished: dict[Take, Future[np.ndarray]] = {}
    try:
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="meditation-finish") as pool,
            progress("speech", len(texts), "seg") as bar,
        ):
            for _ in range(len(texts)):
                look_ahead()
                take, cached = ahead.popleft()
                audio: np.ndarray | Future[np.ndarray] | None = (
                    cached if cached is not None else finished.get(take)
                )
                if audio is None:
                    raw = spoken[take]
                    while not wait([raw], timeout=0.1).done:
                        tell(block=False)  # earlier segments, finished meanwhile
                    raw.result()  # the engine's error, raised here
                    assert engine is not None  # loaded by the first take
                    native = engine.sample_rate
                    audio = finished[take] = pool.submit(finish, raw, native, key_of(*take))
                results.append(pool.submit(polish, audio) if finish_with is not None else audio)
                tell(block=False)
                bar.update(1)
            tell(block=True)
            return [a.result() if isinstance(a, Future) else a for a in results]
    finally:
        if speakers is not None:
            # Takes not started are dropped; those under way end within a sentence.
            speakers.shutdown(wait=True, cancel_futures=True)
        if engine is not None:
            engine.reset()  # release helper processes now, not at interpreter exit
