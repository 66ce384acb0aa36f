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

import numpy as np

from .base import Cue, impulse_response, render_layer

__all__ = [
    "INT16_NOISE_STD",
    "int16_noise",
    "NoiseBed",
    "GrainTail",
    "pan_gains",
    "layer_function",
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
        self.channels = channels

    def render(self, rng: np.random.Generator, n: int) -> np.ndarray:
        from scipy import signal  # reason: scipy.signal loads slowly; presets are read without it

        noise = int16_noise(rng, (self.channels, n))
        y, self.zi = signal.sosfilt(self.sos, noise, axis=-1, zi=self.zi)
        return y


def pan_gains(pan: float) -> tuple[float, float]:
    """Equal-power (left, right) gains for ``pan`` in -1 (left) .. 1 (right)."""
    angle = (math.pi / 4) * (1.0 + pan)
    return math.cos(angle), math.sin(angle)


class GrainTail:
    """Stereo grains added at sample offsets into a buffer that carries across spans.

    ``add`` places a grain starting ``offset`` samples into the current span
    (its tail spills into the following spans); ``take`` hands out the span
    and shifts the buffer on. Grains longer than ``longest`` are cut.
    """

    def __init__(self, span: int, longest: int):
        self.span = span
        self.buffer = np.zeros((span + longest, 2), dtype=np.float32)

    def add(self, offset: int, grain: np.ndarray) -> None:
        end = min(offset + len(grain), len(self.buffer))
        self.buffer[offset:end] += grain[: end - offset]

    def add_mono(self, offset: int, grain: np.ndarray, left: float, right: float) -> None:
        end = min(offset + len(grain), len(self.buffer))
        g = grain[: end - offset]
        self.buffer[offset:end, 0] += np.float32(left) * g
        self.buffer[offset:end, 1] += np.float32(right) * g

    def take(self) -> np.ndarray:
        n = self.span
        out = self.buffer[:n].copy()
        self.buffer[:-n] = self.buffer[n:]
        self.buffer[-n:] = 0.0
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
