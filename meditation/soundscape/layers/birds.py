"""Birds at dawn: a chorus of several birds, each singing its own kind of song.

Perceptual model: a dawn chorus is recognised by variety — not one call
repeated, but a few species each with a song of its own shape: a trill (a
quick run of falling sweeps), a whistled phrase of two or three pure notes,
a warble (a tumbling, never-repeating melody), sharp chips, and a low coo.
Each bird sings its kind of song with small differences every time, at its
own pace, from its own place. Songs are whistled tones (a fundamental and
a little second harmonic) with smooth glides and soft onsets.

Implementation: each song is made when it is due, as notes (start,
duration, glide, level) rendered by phase accumulation, and added into a
tail (``dsp.GrainTail``); songs are rare enough (about one a second) that
this costs little.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .base import BLOCK_SIZE, NOMINAL_RMS_DB, SpanLayer, register_layer, soft_limit
from .dsp import GrainTail, NoiseBed, layer_function, pan_gains

__all__ = ["Birds", "birds", "SONGS"]

_SPAN_BLOCKS = 4
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE
_LONGEST_S = 3.0
_AIR_SHARE = 0.08
# (start s, duration s, start Hz, end Hz, level)
Note = tuple[float, float, float, float, float]


def _trill(rng: np.random.Generator, pitch: float) -> list[Note]:
    n = int(rng.integers(8, 18))
    step = rng.uniform(0.05, 0.09)
    fall = rng.uniform(0.6, 0.8)
    return [
        (i * step, 0.7 * step, pitch * (1 + 0.01 * i), pitch * fall, 1.0 - 0.3 * i / n)
        for i in range(n)
    ]


def _whistle(rng: np.random.Generator, pitch: float) -> list[Note]:
    notes, t = [], 0.0
    for _ in range(int(rng.integers(2, 4))):
        d = rng.uniform(0.25, 0.5)
        f = pitch * rng.choice([1.0, 0.84, 1.19, 0.75])
        notes.append((t, d, f, f * rng.uniform(0.97, 1.03), 1.0))
        t += d + rng.uniform(0.05, 0.15)
    return notes


def _warble(rng: np.random.Generator, pitch: float) -> list[Note]:
    notes, t = [], 0.0
    f = pitch
    for _ in range(int(rng.integers(10, 22))):
        d = rng.uniform(0.04, 0.12)
        g = pitch * math.exp(rng.uniform(-0.4, 0.4))
        notes.append((t, d, f, g, rng.uniform(0.5, 1.0)))
        f = g
        t += d + rng.uniform(0.0, 0.03)
    return notes


def _chips(rng: np.random.Generator, pitch: float) -> list[Note]:
    step = rng.uniform(0.15, 0.35)
    return [
        (i * step, 0.025, pitch * 1.1, pitch * 0.9, 1.0) for i in range(int(rng.integers(2, 6)))
    ]


def _coo(rng: np.random.Generator, pitch: float) -> list[Note]:
    low = pitch * 0.12
    return [
        (0.0, 0.35, low, low * 1.05, 0.6),
        (0.5, 0.6, low * 1.1, low * 0.95, 1.0),
        (1.25, 0.4, low, low * 0.95, 0.7),
    ]


SONGS: dict[str, Callable[[np.random.Generator, float], list[Note]]] = {
    "trill": _trill,
    "whistle": _whistle,
    "warble": _warble,
    "chips": _chips,
    "coo": _coo,
}
# Mean seconds between songs for each kind.
_PERIOD_S = {"trill": 5.0, "whistle": 6.0, "warble": 7.0, "chips": 4.0, "coo": 9.0}


@dataclass
class _Bird:
    kind: str
    pitch: float
    period_s: float
    level: float
    left: float
    right: float
    next_s: float


@register_layer("birds")
class Birds(SpanLayer):
    """A dawn chorus: several birds, each with its own kind of song."""

    description = (
        "A dawn chorus: trills, whistles, warbles, chips and a dove, never the same twice."
    )
    span_blocks = _SPAN_BLOCKS
    ranges = {"birds": (1, 12), "activity": (0.1, 4.0)}

    @dataclass(frozen=True)
    class Params:
        """Birds parameters."""

        birds: int = 6
        """How many birds sing (their kinds are taken in turn: trill, whistle, warble, chips, coo)."""
        activity: float = 1.0
        """Songs come this many times more often than a typical bird's."""

    def __init__(self, **kwargs):
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        p = self.params
        rng = self.rng
        kinds = list(SONGS)
        self._birds = []
        for i in range(int(p.birds)):
            kind = kinds[i % len(kinds)]
            left, right = pan_gains(rng.uniform(-0.9, 0.9))
            period = _PERIOD_S[kind] * rng.uniform(0.7, 1.4) / p.activity
            self._birds.append(
                _Bird(
                    kind,
                    pitch=rng.uniform(2500.0, 5000.0),
                    period_s=period,
                    level=math.exp(rng.uniform(-1.2, 0.0)),
                    left=left,
                    right=right,
                    next_s=rng.uniform(0.0, period),
                )
            )
        # Level: mean power of a song of each kind, estimated from a few made now.
        fs = self.sample_rate
        probe = np.random.default_rng(0)
        power = 0.0
        for b in self._birds:
            e = np.mean([np.sum(self._song(b, probe) ** 2) for _ in range(3)])
            power += e * b.level**2 * 0.5 / fs / b.period_s
        total = 10 ** (NOMINAL_RMS_DB / 10)
        self._gain = math.sqrt(total * (1 - _AIR_SHARE) / power)
        # The still morning air (a faint, distant hush) between songs.
        sos = signal.butter(
            1, [150.0, min(6000.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos"
        )
        self._air = NoiseBed(sos, rms=math.sqrt(total * _AIR_SHARE))
        self._tail = GrainTail(_SPAN, int(_LONGEST_S * fs))

    def _song(self, bird: _Bird, rng: np.random.Generator) -> np.ndarray:
        fs = self.sample_rate
        top = 0.42 * fs
        notes = SONGS[bird.kind](rng, bird.pitch * math.exp(rng.uniform(-0.05, 0.05)))
        end = min(max(s + d for s, d, *_ in notes), _LONGEST_S)
        out = np.zeros(int(end * fs) + 1, dtype=np.float64)
        for start, dur, f0, f1, level in notes:
            i0 = int(start * fs)
            n = min(int(dur * fs), len(out) - i0)
            if n < 8:
                continue
            x = np.arange(n) / n
            # An exponential glide, its phase summed in float64 (long notes
            # drift in float32); the sines themselves in float32.
            f = np.minimum(f0 * np.exp(math.log(f1 / f0) * x), top / 2)
            cycles = np.cumsum(f) / fs
            cycles -= np.floor(cycles)
            phase = (2 * np.pi * cycles).astype(np.float32)
            s = np.sin(np.float32(np.pi) * x.astype(np.float32))
            env = s * np.sqrt(s) * np.float32(level)
            tone = np.sin(phase)
            tone += np.float32(0.2) * np.sin(2 * phase)
            out[i0 : i0 + n] += env * tone
        return out

    def _render_span(self, start: int) -> np.ndarray:
        fs = self.sample_rate
        rng = self.rng
        end_s = (start + _SPAN) / fs
        for b in self._birds:
            while b.next_s < end_s:
                offset = max(0, round(b.next_s * fs) - start)
                song = (self._song(b, rng) * (self._gain * b.level)).astype(np.float32)
                self._tail.add_mono(offset, song, b.left, b.right)
                b.next_s += b.period_s * float(rng.uniform(0.5, 1.5))
        out = self._tail.take()
        out += self._air.render_stereo(rng, _SPAN)
        soft_limit(out)
        return out


birds = layer_function("birds")
