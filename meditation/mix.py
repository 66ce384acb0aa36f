"""Stage 6: mix the voice over the ambience, chunk by chunk.

The ambience ducks under the voice: the duck envelope comes from the timeline
(where speech is known to be), with a gentle attack before each word, a slow
release after, and held through pauses shorter than ``bridge_s`` so the bed
does not pump between sentences. Everything here is random access by sample
position, so a mix made in any chunk size is the same.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

import numpy as np

from .levels import VOICE_CREST_DB, VOICE_RMS_DB
from .timeline import Timeline

__all__ = ["limit_crest", "Ducking", "Ambience", "VoiceBus", "DuckEnvelope", "MixChunk", "mix_chunks", "VOICE_RMS_DB", "CHUNK"]

CHUNK = 32768


@dataclass(frozen=True)
class Ducking:
    """How the ambience makes room for the voice."""

    depth_db: float = 6.0
    """Extra attenuation of the ambience while the voice speaks."""
    attack_s: float = 0.25
    """Time to duck fully, starting before the first word."""
    release_s: float = 0.8
    """Time to come back up after the voice stops."""
    bridge_s: float = 1.2
    """Pauses shorter than this stay ducked (no pumping between sentences)."""


class Ambience(Protocol):
    """What the mixer needs of a soundscape: named stereo stems, streamed."""

    names: tuple[str, ...]

    def render(self, n_samples: int) -> dict[str, np.ndarray]:
        """The next ``n_samples`` of every layer that sounds, levels and fades applied (silent ones may be left out)."""


def limit_crest(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Limit a spoken segment's peaks to ``VOICE_CREST_DB`` above its own RMS.

    A few plosives would otherwise decide how loud the whole track can be.
    The speech stage runs this in its worker thread, beside synthesis.
    """
    from .master import TruePeakLimiter

    if len(audio) == 0:
        return audio
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms <= 0:
        return audio
    scale = np.float32(10 ** (VOICE_RMS_DB / 20) / rms)
    limiter = TruePeakLimiter(sample_rate, ceiling_db=VOICE_RMS_DB + VOICE_CREST_DB, attack_s=0.003, release_s=0.05)
    stereo = np.repeat((audio * scale)[:, None], 2, axis=1)
    limited = np.concatenate([limiter.process(stereo), limiter.flush()])
    return np.ascontiguousarray(limited[:, 0] / scale)


class VoiceBus:
    """The narration placed on the timeline, mono, at a fixed speech level (segments already crest-limited)."""

    def __init__(self, timeline: Timeline, audio: Sequence[np.ndarray]):
        self.timeline = timeline
        # float64 and numpy's own summation: BLAS dot products may thread and
        # round differently from run to run, and the level must be exact.
        energy = sum(float(np.sum(np.square(a, dtype=np.float64))) for a in audio)
        count = sum(len(a) for a in audio)
        rms = float(np.sqrt(energy / count)) if count and energy > 0 else 1.0
        self.gain = np.float32(10 ** (VOICE_RMS_DB / 20) / rms)
        self.audio = list(audio)
        self._starts = [s.start for s in timeline.segments]

    def render(self, start: int, n: int) -> np.ndarray:
        """Mono voice for samples [start, start + n)."""
        out = np.zeros(n, dtype=np.float32)
        first = max(0, bisect.bisect_right(self._starts, start) - 1)
        for i in range(first, len(self._starts)):
            seg_start = self._starts[i]
            if seg_start >= start + n:
                break
            audio = self.audio[i]
            lo, hi = max(start, seg_start), min(start + n, seg_start + len(audio))
            if lo < hi:
                out[lo - start : hi - start] += audio[lo - seg_start : hi - seg_start] * self.gain
        return out


class DuckEnvelope:
    """Ambience gain (linear) over time, from where the voice speaks."""

    def __init__(self, timeline: Timeline, ducking: Ducking = Ducking()):
        sr = timeline.sample_rate
        spans: list[list[int]] = []
        for seg in timeline.segments:
            if seg.length == 0 or seg.cue_at_s is not None:
                continue  # a breathing cue's one word must not pump the breath swell under it
            if spans and seg.start - spans[-1][1] < ducking.bridge_s * sr:
                spans[-1][1] = seg.end
            else:
                spans.append([seg.start, seg.end])
        low = 10 ** (-ducking.depth_db / 20)
        xs: list[float] = [0.0]
        ys: list[float] = [1.0]
        attack, release = ducking.attack_s * sr, ducking.release_s * sr
        for start, end in spans:
            xs += [max(start - attack, xs[-1] + 1), max(start, xs[-1] + 2), end, end + release]
            ys += [1.0, low, low, 1.0]
        self._x = np.asarray(xs, dtype=np.float64)
        self._y = np.asarray(ys, dtype=np.float64)
        # Overlapping ramps (a release cut short by the next attack) must stay monotone in x.
        self._x = np.maximum.accumulate(self._x)

    def gain(self, start: int, n: int) -> np.ndarray:
        """Gain for samples [start, start + n)."""
        t = np.arange(start, start + n, dtype=np.float64)
        return np.interp(t, self._x, self._y).astype(np.float32)


@dataclass
class MixChunk:
    """One chunk of the mix and its parts (for stems)."""

    start: int
    mix: np.ndarray
    """Stereo mix, ``(n, 2)``."""
    voice: np.ndarray
    """Stereo voice as it sits in the mix."""
    layers: dict[str, np.ndarray]
    """Each layer after ducking, as it sits in the mix."""


def mix_chunks(
    timeline: Timeline,
    voice: VoiceBus | None,
    ambience: Ambience | None,
    *,
    ducking: Ducking = Ducking(),
    fade_in_s: float = 3.0,
    fade_out_s: float = 6.0,
    chunk: int = CHUNK,
    keep_layers: bool = False,
) -> Iterator[MixChunk]:
    """Yield the mix chunk by chunk, from sample 0 to the end of the timeline.

    With ``keep_layers`` each chunk also carries every layer as it sits in the
    mix (for stems); their sum equals the ambience in the mix up to float
    rounding.
    """
    duck = DuckEnvelope(timeline, ducking) if voice is not None else None
    sr = timeline.sample_rate
    total = timeline.length
    fade_in = max(1, int(fade_in_s * sr))
    fade_out = max(1, int(fade_out_s * sr))
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        if voice is not None:
            mono = voice.render(start, n)
            voice_st = np.repeat(mono[:, None], 2, axis=1)
        else:
            voice_st = np.zeros((n, 2), dtype=np.float32)
        mix = voice_st.copy()
        layers: dict[str, np.ndarray] = {}
        if ambience is not None:
            env = _fade(start, n, total, fade_in, fade_out)
            if duck is not None:
                env = duck.gain(start, n) if env is None else env * duck.gain(start, n)
            env = None if env is None else env.astype(np.float32)[:, None]
            rendered = ambience.render(n)
            if rendered:
                # The mix is summed the same way with or without stems, so
                # asking for stems never changes a single sample of it.
                bed = sum(rendered.values())
                mix += bed if env is None else bed * env
            if keep_layers:
                for name in ambience.names:
                    stem = rendered.get(name)
                    if stem is None:  # silent here
                        layers[name] = np.zeros((n, 2), dtype=np.float32)
                    else:
                        layers[name] = stem if env is None else stem * env
        yield MixChunk(start, mix, voice_st, layers)


def _fade(start: int, n: int, total: int, fade_in: int, fade_out: int) -> np.ndarray | None:
    """Raised-cosine fade-in at the start and fade-out at the end; None where the chunk is all 1."""
    if fade_in <= start and start + n <= total - fade_out:
        return None
    t = np.arange(start, start + n, dtype=np.float64)
    env = np.clip(np.minimum(t / fade_in, (total - t) / fade_out), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * env)
