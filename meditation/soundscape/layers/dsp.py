"""Building blocks the layers share: cheap noise, a normalised noise bed, event grains, wrappers.

Layers are made of a few recurring pieces: uniform int16 noise (half the
random bits of float noise) through a fixed filter whose gain is folded into
its numerator; short grains (a drop, a bubble, a crackle, a chirp) added at
random times into a tail that carries across spans; and the pure-function
form ``river(n, sample_rate=..., rng=...)`` of each layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...errors import SoundscapeError
from .base import BLOCK_SIZE, Cue, check_range, impulse_response, render_layer

__all__ = [
    "INT16_NOISE_STD",
    "int16_noise",
    "NoiseBed",
    "GrainTail",
    "pan_gains",
    "layer_function",
    "cue_strength",
    "EventLayerMixin",
]

INT16_NOISE_STD = 32768.0 / math.sqrt(3.0)
"""Standard deviation of uniform int16 noise (variance ~ 32768^2 / 3)."""


def int16_noise(rng: np.random.Generator, shape) -> np.ndarray:
    """Uniform noise as float32 in int16 units (std ``INT16_NOISE_STD``): half the random bits of float noise."""
    return rng.integers(-32768, 32768, size=shape, dtype=np.int16).astype(np.float32)


class NoiseBed:
    """Independent noise per channel through one fixed SOS filter, at a chosen RMS.

    The gain (the filter's noise gain and the int16 scale) is folded into the
    first section's numerator, so a span costs one noise draw and one
    ``sosfilt`` call. ``render`` returns channel-first float32 ``(channels, n)``.
    """

    def __init__(self, sos: np.ndarray, *, rms: float = 1.0, channels: int = 2):
        h = impulse_response(sos)
        self.power = float(np.dot(h, h))
        self.rho = float(np.dot(h[:-1], h[1:]) / self.power)
        """Lag-1 autocorrelation of the output (for level-neutral tilts)."""
        sos = np.array(sos, dtype=np.float64)
        sos[0, :3] *= rms / (math.sqrt(self.power) * INT16_NOISE_STD)
        self.sos = sos.astype(np.float32)
        self.zi = np.zeros((len(sos), channels, 2), dtype=np.float32)
        self.zc = np.zeros((len(sos), 2), dtype=np.complex64)
        self.channels = channels

    def render(self, rng: np.random.Generator, n: int) -> np.ndarray:
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        noise = int16_noise(rng, (self.channels, n))
        if len(self.sos) == 1:
            # One section: lfilter runs it as sosfilt would, a third faster.
            y, self.zi[0] = signal.lfilter(
                self.sos[0, :3], self.sos[0, 3:], noise, axis=-1, zi=self.zi[0]
            )
            return y
        y, self.zi = signal.sosfilt(self.sos, noise, axis=-1, zi=self.zi)
        return y

    def render_stereo(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """The next ``n`` samples of a two-channel bed, interleaved: float32 ``(n, 2)``.

        Left and right go through the filter as the real and imaginary parts
        of one complex signal: one ``sosfilt`` pass for both ears, 40 %
        cheaper than ``render`` and its transpose, and already in the layers'
        ``(n, 2)`` layout. A bed is rendered by this or by ``render``, not
        both: each keeps its own filter state.
        """
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        noise = int16_noise(rng, (n, 2)).view(np.complex64)[:, 0]
        y, self.zc = signal.sosfilt(self.sos, noise, zi=self.zc)
        return y.view(np.float32).reshape(n, 2)


def pan_gains(pan: float) -> tuple[float, float]:
    """Equal-power (left, right) gains for ``pan`` in -1 (left) .. 1 (right)."""
    angle = (math.pi / 4) * (1.0 + pan)
    return math.cos(angle), math.sin(angle)


class GrainTail:
    """Stereo grains added at sample offsets into a buffer that carries across spans.

    ``add`` places a grain starting ``offset`` samples into the current span
    (its tail spills into the following spans); ``take`` hands out the span
    and shifts the buffer on. Grains longer than ``longest`` are cut.
    ``end`` bounds the rows written so far: only those are shifted, which
    matters where ``longest`` is seconds and the grains are sparse.
    """

    def __init__(self, span: int, longest: int):
        self.span = span
        self.buffer = np.zeros((span + longest, 2), dtype=np.float32)
        self.end = 0

    def mark(self, end: int) -> None:
        """Note that rows up to ``end`` may have been written (for writers into ``buffer``)."""
        self.end = min(max(self.end, end), len(self.buffer))

    def add(self, offset: int, grain: np.ndarray) -> None:
        end = min(offset + len(grain), len(self.buffer))
        self.buffer[offset:end] += grain[: end - offset]
        self.mark(end)

    def add_mono(self, offset: int, grain: np.ndarray, left: float, right: float) -> None:
        end = min(offset + len(grain), len(self.buffer))
        g = grain[: end - offset]
        self.buffer[offset:end, 0] += np.float32(left) * g
        self.buffer[offset:end, 1] += np.float32(right) * g
        self.mark(end)

    def take(self) -> np.ndarray:
        n = self.span
        out = self.buffer[:n].copy()
        live = self.end
        if live > n:
            self.buffer[: live - n] = self.buffer[n:live]
            self.buffer[live - n : live] = 0.0
        else:
            self.buffer[:live] = 0.0
        self.end = max(live - n, 0)
        return out


def layer_function(name: str, *, takes_cues: bool = False) -> Callable[..., np.ndarray]:
    """The pure-function form of layer ``name``: ``f(n_samples, *, sample_rate, rng, **params)``."""

    def render(
        n_samples: int,
        *,
        sample_rate: int,
        rng: np.random.Generator,
        cues: Sequence[Cue] = (),
        **params,
    ) -> np.ndarray:
        return render_layer(
            name, n_samples, sample_rate=sample_rate, rng=rng, params=params, cues=cues
        )

    render.__name__ = render.__qualname__ = name.replace("-", "_")
    render.__doc__ = (
        f"Render ``n_samples`` of the {name} layer in one call: float32, shape (n_samples, 2).\n\n"
        f"``rng`` is the source of all randomness (same seed, same audio); ``params`` are\n"
        f"the fields of the layer's ``Params``"
        + (", ``cues`` its one-off events." if takes_cues else ".")
    )
    return render


class GrainBank:
    """Mono grains baked into stereo variants (a few loudnesses x pan positions), scattered at random.

    A scattered grain then costs one slice add, which keeps a layer of
    hundreds of events a second (drops, bubbles, crackles) about as cheap as
    filtered noise. ``weights`` say how often each grain is chosen.
    """

    def __init__(
        self,
        grains: Sequence[np.ndarray],
        *,
        weights: Sequence[float] | None = None,
        loudness: Sequence[float] = (1.0,),
        pans: Sequence[float] | np.ndarray = (-0.8, -0.4, 0.0, 0.4, 0.8),
    ):
        self.variants = [
            [_stereo(g, level, pan) for level in loudness for pan in pans] for g in grains
        ]
        w = np.ones(len(grains)) if weights is None else np.asarray(weights, dtype=np.float64)
        self.cdf = np.cumsum(w / w.sum())
        self.cdf[-1] = 1.0
        self.per_grain = len(self.variants[0])
        self.longest = max(len(g) for g in grains)

    def scatter(
        self, tail: GrainTail, rng: np.random.Generator, count: int, within: int, at: int = 0
    ) -> None:
        """Add ``count`` grains at uniform random offsets in ``[at, at + within)`` of the tail's span."""
        if count <= 0:
            return
        drawn = rng.integers(at, at + within, count)
        tail.mark(int(drawn.max()) + self.longest)
        starts = drawn.tolist()
        u = rng.random((2, count))
        kinds = np.searchsorted(self.cdf, u[0]).tolist()
        variants = (u[1] * self.per_grain).astype(int).tolist()
        buffer = tail.buffer
        bank = self.variants
        for start, kind, variant in zip(starts, kinds, variants, strict=True):
            grain = bank[kind][variant]
            buffer[start : start + len(grain)] += grain


def _stereo(grain: np.ndarray, level: float, pan: float) -> np.ndarray:
    left, right = pan_gains(pan)
    out = np.empty((len(grain), 2), dtype=np.float32)
    out[:, 0] = grain * np.float32(level * left)
    out[:, 1] = grain * np.float32(level * right)
    return out


def decaying_noise(
    rng: np.random.Generator, n: int, decay_s: float, sample_rate: int, attack_s: float = 0.0005
) -> np.ndarray:
    """White noise under an exponential decay with a short raised-cosine attack, float64."""
    t = np.arange(n) / sample_rate
    env = np.exp(-t / decay_s) * np.minimum(1.0, t / max(attack_s, 1e-9))
    return rng.standard_normal(n) * env


def resonate(x: np.ndarray, freq_hz: float, q: float, sample_rate: int) -> np.ndarray:
    """``x`` through a second-order resonance (peak gain 1) at ``freq_hz``."""
    from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

    b, a = signal.iirpeak(min(freq_hz, 0.45 * sample_rate), q, fs=sample_rate)
    return signal.lfilter(b, a, x)


def unit_energy(grain: np.ndarray) -> np.ndarray:
    """``grain`` scaled to unit energy (sum of squares), float32."""
    return (grain / math.sqrt(float(np.dot(grain, grain)) or 1.0)).astype(np.float32)


def cue_strength(layer: str, cue: Cue, known: Sequence[str] = ("strength",)) -> float:
    """A one-shot cue's ``strength`` (0..1, default 1), checked, with one-line errors naming the layer."""
    extra = set(cue.params) - set(known)
    if extra:
        raise SoundscapeError(
            f"layer {layer!r}: cue {cue.action!r} has no option {sorted(extra)[0]!r} "
            f"(known: {', '.join(known)})"
        )
    if not math.isfinite(cue.time_s) or cue.time_s < 0:
        raise SoundscapeError(
            f"layer {layer!r}: cue time {cue.time_s} must be a time on the track (>= 0 s)"
        )
    value = cue.params.get("strength", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SoundscapeError(
            f"layer {layer!r}: cue {cue.action!r}: strength must be a number, not {value!r}"
        )
    check_range(f"layer {layer!r}: cue {cue.action!r}: strength", value, 0.0, 1.0)
    return float(value)


class EventLayerMixin:
    """One-off sounds at absolute times: cues, plus spontaneous events drawn block by block.

    A layer keeps ``self._events`` (start sample, stereo grain) and sums those
    that overlap each block. A cue's sound is made from its own seed (the
    layer's cue seed and the cue's index), so a cue added later sounds as it
    would have had the layer known of it from the start.
    """

    name: str
    rng: np.random.Generator
    sample_rate: int
    block_start: int
    cues: tuple[Cue, ...]
    if TYPE_CHECKING:  # Layer's, which the class this is mixed into provides

        def _checked_later(self, later: Sequence[Cue]) -> tuple[Cue, ...]: ...

    def _check_cue(self, cue: Cue) -> None:
        """Refuse, in one line, a cue whose options this layer cannot take."""
        cue_strength(self.name, cue)

    def _init_events(self) -> None:
        """Check the cues known at the start; no event is under way yet."""
        for cue in self.cues:
            self._check_cue(cue)
        self._events: list[tuple[int, np.ndarray]] = []
        self._cue_seed = int(self.rng.integers(2**63))
        self._next_cue = 0

    def _cue_sound(self, cue: Cue, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def add_cues(self, later: Sequence[Cue]) -> bool:
        """Take later cues in place: each sounds from its own seed, whenever it arrives."""
        for cue in later:
            self._check_cue(cue)
        self._checked_later(later)
        return True

    def _scatter_events(
        self,
        per_min: float,
        sound: Callable[[np.random.Generator, float], np.ndarray],
        softest: float,
    ) -> None:
        """Events of their own in the next block, ``per_min`` a minute on average (Poisson),
        each at a random time and from its own seed, at a strength from ``softest`` to 1."""
        if per_min <= 0:
            return
        for _ in range(int(self.rng.poisson(per_min / 60.0 * BLOCK_SIZE / self.sample_rate))):
            at = self.block_start + int(self.rng.integers(BLOCK_SIZE))
            sub = np.random.default_rng(int(self.rng.integers(2**63)))
            self._events.append((at, sound(sub, float(sub.uniform(softest, 1.0)))))

    def _mix_events(self, out: np.ndarray, b0: int) -> None:
        """Start the cues that begin before this block ends; add every live event to ``out``."""
        n = len(out)
        b1 = b0 + n
        sr = self.sample_rate
        while self._next_cue < len(self.cues):
            cue = self.cues[self._next_cue]
            start = round(cue.time_s * sr)
            if start >= b1:
                break
            sound = self._cue_sound(cue, np.random.default_rng([self._cue_seed, self._next_cue]))
            self._events.append((start, sound))
            self._next_cue += 1
        live = []
        for start, grain in self._events:
            if start + len(grain) <= b0:
                continue
            live.append((start, grain))
            if start >= b1:
                continue
            i0 = max(0, b0 - start)
            i1 = min(len(grain), b1 - start)
            o0 = start + i0 - b0
            out[o0 : o0 + i1 - i0] += grain[i0:i1]
        self._events = live
