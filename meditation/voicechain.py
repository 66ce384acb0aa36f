"""The voice chain that runs: make the dry synthetic voice sit in the room with the ambience.

Text-to-speech laid dry over ambience sounds pasted on. This gentle chain,
built from pedalboard's (JUCE) processors, does what a mix engineer would do
to a narration, in this order:

1. **high-pass** (two first-order sections, 12 dB/octave) below the voice:
   rumble and DC that the ambience should own;
2. **warmth**: a broad, small bell in the low mids (chest resonance);
3. **de-esser**: the band above ``deess_hz`` is split off (the complement of
   a low-pass, so with nothing to do the sum is the input, exactly) and
   compressed fast and hard, so "s" and "t" stop hissing over a quiet bed;
4. **leveler**: a slow compressor with a low threshold, so quiet and loud
   sentences sit together (sentence-to-sentence spread shrinks by a third or
   more), followed by the make-up gain that keeps the voice at its level;
5. **reverb**: a soft room or hall, stereo. Its tail belongs to the voice
   stem and rings on into the pauses: the chain processes the placed voice
   as one continuous stream, never segment by segment.

Streaming: ``VoiceChain`` processes fixed blocks of ``BLOCK`` samples on a
grid from sample 0 with each processor's state carried, so the output does
not depend on how callers chunk it; where the input is silent and the reverb
has died away, blocks are skipped (a 30-minute sleep tail costs nothing).
Renders are deterministic, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pedalboard as pb
from scipy import signal

from .levels import VOICE_CREST_DB, VOICE_RMS_DB
from .loudness import integrated_loudness
from .voicefx import ROOMS, VoiceFx

__all__ = ["VoiceChain", "measure_makeup_db", "BLOCK"]

BLOCK = 8192
_PEAK_DB = VOICE_RMS_DB + VOICE_CREST_DB  # the speech stage's peak ceiling
_PEAK_GAIN = np.float32(10 ** (_PEAK_DB / 20))
_SILENT = 1e-6  # -120 dBFS: the reverb has died away below this
_DENORMAL_GUARD = 1e-18  # -360 dBFS


class VoiceChain:
    """The chain over the placed voice, streamed in fixed blocks: mono in, stereo out.

    Parameters
    ----------
    fx : VoiceFx
        What the chain does.
    sample_rate : int
        Rate of the voice stream.
    source : callable
        ``source(start, n)`` returns the dry mono voice for samples
        ``[start, start + n)`` (random access, e.g. ``VoiceBus.render``).
    makeup_db : float
        Gain after the leveler, so the voice keeps its level (see ``measure_makeup_db``).
    """

    def __init__(
        self,
        fx: VoiceFx,
        sample_rate: int,
        source: Callable[[int, int], np.ndarray],
        *,
        makeup_db: float = 0.0,
    ):
        self.fx = fx
        self.sample_rate = int(sample_rate)
        self._source = source
        self._makeup = np.float32(10 ** (makeup_db / 20))
        self._dynamics = _dynamics(fx)
        self._reverb = _reverb(fx)
        self._next = 0  # first sample of the next block
        self._pending = np.zeros((0, 2), dtype=np.float32)
        self._ringing = False  # has the reverb anything left to say?

    def render(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` of processed voice, ``(n, 2)`` float32.

        Blocks of ``BLOCK`` samples on a grid from sample 0 are processed
        whole, so the result is the same for any sequence of chunk sizes.
        """
        parts = [self._pending]
        have = len(self._pending)
        while have < n_samples:
            block = self._block(self._source(self._next, BLOCK))
            self._next += BLOCK
            parts.append(block)
            have += len(block)
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._pending = out[n_samples:]
        return np.ascontiguousarray(out[:n_samples])

    def _block(self, x: np.ndarray) -> np.ndarray:
        sr = self.sample_rate
        loud = bool(np.any(x))
        if not loud and not self._ringing:
            # Silence in, silence out: skip the work (the long tail of a sleep story).
            return np.zeros((len(x), 2), dtype=np.float32)
        if loud and not self._ringing:
            for p in (*self._dynamics.values(), self._reverb):
                if p is not None:
                    p.reset()  # a fresh start after silence, whatever rang before
        y = _run_dynamics(self._dynamics, x, sr, self._makeup)
        stereo = np.repeat(y[None, :], 2, axis=0)
        if self._reverb is not None:
            stereo = self._reverb.process(stereo, sr, buffer_size=BLOCK, reset=False)
        out = np.ascontiguousarray(stereo.T, dtype=np.float32)
        self._ringing = loud or float(np.abs(out[-BLOCK // 8 :]).max(initial=0.0)) > _SILENT
        return out


def _dynamics(fx: VoiceFx) -> dict:
    stages = {
        "hp1": pb.HighpassFilter(cutoff_frequency_hz=fx.highpass_hz),
        "hp2": pb.HighpassFilter(cutoff_frequency_hz=fx.highpass_hz),
        "warmth": pb.PeakFilter(cutoff_frequency_hz=fx.warmth_hz, gain_db=fx.warmth_db, q=0.7)
        if fx.warmth_db
        else None,
        "split": _Lowpass(fx.deess_hz) if fx.deess_ratio > 1 else None,
        "deess": pb.Compressor(
            threshold_db=fx.deess_threshold_db, ratio=fx.deess_ratio, attack_ms=1.0, release_ms=60.0
        )
        if fx.deess_ratio > 1
        else None,
        "level": pb.Compressor(
            threshold_db=fx.level_threshold_db,
            ratio=fx.level_ratio,
            attack_ms=fx.level_attack_ms,
            release_ms=fx.level_release_ms,
        )
        if fx.level_ratio > 1
        else None,
        # The leveler is slow on purpose, so plosives slip past it and the
        # make-up gain would lift them: hold peaks where the speech stage put them.
        "peak": pb.Limiter(threshold_db=_PEAK_DB, release_ms=50.0),
    }
    return stages


class _Lowpass:
    """4th-order Butterworth low-pass with carried state, in pedalboard's calling style.

    pedalboard's own low-pass is first order: its complement would leave most
    of the sibilance in the "low" band, where the de-esser cannot reach it.
    """

    def __init__(self, cutoff_hz: float):
        self.cutoff_hz = cutoff_hz
        self._sos: np.ndarray | None = None
        self._zi: np.ndarray | None = None

    def reset(self) -> None:
        self._zi = None

    def process(
        self, x: np.ndarray, sample_rate: float, buffer_size: int = 0, reset: bool = True
    ) -> np.ndarray:
        if self._sos is None:
            self._sos = signal.butter(4, self.cutoff_hz, btype="low", fs=sample_rate, output="sos")
        if reset or self._zi is None:
            self._zi = np.zeros((self._sos.shape[0], 2))
        # A constant far below hearing keeps the filter's state out of the
        # denormal range while it decays in the pauses: there it ran 4-5x slower.
        y, self._zi = signal.sosfilt(
            self._sos, x[0].astype(np.float64) + _DENORMAL_GUARD, zi=self._zi
        )
        y -= _DENORMAL_GUARD
        return y[None, :].astype(np.float32)


def _reverb(fx: VoiceFx):
    if fx.reverb == "none" or fx.reverb_mix <= 0:
        return None
    # JUCE's reverb scales dry by 2 and wet by 3: dry 0.5 is the voice unchanged.
    return pb.Reverb(
        **ROOMS[fx.reverb], wet_level=fx.reverb_mix / 3.0, dry_level=0.5, freeze_mode=0.0
    )


def _run_dynamics(
    stages: dict, x: np.ndarray, sr: int, makeup: float | np.float32 = 1.0
) -> np.ndarray:
    """Mono block through high-pass, warmth, de-esser and leveler (state carried in the processors)."""
    y = x[None, :]
    for name in ("hp1", "hp2", "warmth"):
        if stages[name] is not None:
            y = stages[name].process(y, sr, buffer_size=BLOCK, reset=False)
    if stages["split"] is not None:
        low = stages["split"].process(y, sr, buffer_size=BLOCK, reset=False)
        high = y - low  # the exact complement: an idle de-esser gives the input back
        y = low + stages["deess"].process(
            np.ascontiguousarray(high), sr, buffer_size=BLOCK, reset=False
        )
    if stages["level"] is not None:
        y = stages["level"].process(
            np.ascontiguousarray(y, dtype=np.float32), sr, buffer_size=BLOCK, reset=False
        )
    y = y * np.float32(makeup)
    y = stages["peak"].process(
        np.ascontiguousarray(y, dtype=np.float32), sr, buffer_size=BLOCK, reset=False
    )
    y *= _PEAK_GAIN  # JUCE's limiter raises its threshold to 0 dBFS: bring it back
    return np.asarray(y[0], dtype=np.float32)


def measure_makeup_db(fx: VoiceFx, speech: list[np.ndarray], sample_rate: int) -> float:
    """Gain that keeps the voice's loudness (BS.1770) through the chain, measured on ``speech``: the voice's opening (``mix.voice_opening``).

    The chain must not move the voice against the ambience (layer levels are
    relative to it): whatever the leveler takes and the room adds, this gives back.
    """
    x = (
        np.concatenate([np.asarray(a, dtype=np.float32) for a in speech])
        if speech
        else np.zeros(0, dtype=np.float32)
    )
    if not len(x):
        return 0.0

    def source(start: int, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        part = x[start : start + n]
        out[: len(part)] = part
        return out

    before = integrated_loudness(np.repeat(x[:, None].astype(np.float64), 2, axis=1), sample_rate)
    makeup_db = 0.0
    # Twice: the peak limiter after the make-up gain is not linear.
    for _ in range(2):
        y = (
            VoiceChain(fx, sample_rate, source, makeup_db=makeup_db)
            .render(len(x))
            .astype(np.float64)
        )
        after = integrated_loudness(y, sample_rate)
        if not (math.isfinite(before) and math.isfinite(after)):
            return 0.0
        makeup_db += before - after
    return makeup_db
