"""River: a gentle stream, as a rushing-water bed plus many small bubbles.

Perceptual model. What makes running water recognisable is two things heard
together:

* a broadband *rush*: noise with a brownish slope and a broad hump a few
  hundred hertz wide, whose brightness and level never quite settle (here a
  fixed band-shaping filter whose spectral tilt and level are wobbled by slow
  random control signals, independently in each ear, so the bed is diffuse);
* the *babble*: a dense scatter of tiny tonal chirps, each one a bubble
  ringing at its Minnaert frequency as it forms (van den Doel, "Physically
  based models for liquid sounds", 2005). A bubble of radius ``r`` metres
  sounds ``A sin(2 pi f0 (t + sigma t^2 / 2)) exp(-d t)`` with ``f0 = 3 / r``
  Hz, damping ``d = 0.043 f0 + 0.0014 f0^1.5`` per second, a pitch rise
  ``sigma = 0.1 d`` (the bubble shrinks as it rises) and ``A ~ r^1.5``. Bubbles
  arrive as a Poisson process with random radii, each placed in the stereo
  field by level and arrival-time difference.

The "babbling brook" patch (a resonant filter whose cutoff wobbles at ~15 Hz)
makes the same gliding chirps with a swept filter; here the chirps come from
the bubble grains instead, because a time-varying filter cannot run as one
vectorised call and the layer has to stay about as cheap as plain filtered
noise. Everything slow (tilt, level) is drawn at random knots ~0.1 s apart,
joined by straight lines and held for ~3 ms control steps; audio is made a
few blocks (a span, see ``SpanLayer``) at a time to keep per-call overhead down.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy.signal is imported where a layer runs: it takes most of a second to
# load, and reading or checking a preset (batch, studio) needs none of it.
from ...errors import SoundscapeError
from .base import (
    BLOCK_SIZE,
    NOMINAL_RMS_DB,
    BiquadKind,
    SpanLayer,
    held_tilt,
    impulse_response,
    rbj_biquad,
    register_layer,
    soft_limit,
)
from .dsp import INT16_NOISE_STD, int16_noise, layer_function

__all__ = ["River", "Stream", "Waterfall", "river", "stream", "waterfall"]

# Number of distinct bubble radii; grains are precomputed once per radius.
_BANK_SIZE = 64
# Blocks per span (see SpanLayer).
_SPAN_BLOCKS = 4
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE
# Discrete stereo positions a bubble can take.
_PAN_POSITIONS = 7
# Bubble size distribution: density per log-radius ~ r^-_SIZE_EXPONENT, so
# small bubbles outnumber big ones. A steeper law would make big bubbles rare
# *and* (with A ~ r^1.5 and their slow damping) individually loud: isolated
# plops that stick out of a gentle stream and eat the headroom.
_SIZE_EXPONENT = 1.0
# Bubble grains stop at -40 dB (the rush masks anything quieter; shorter
# grains are cheaper to add); the last part is faded so the cut is silent.
_GRAIN_FLOOR = 1e-2
# Largest interaural time difference of a bubble at the edge of the field.
_ITD_MAX_S = 0.0006
# Per-bubble loudness: one of a few levels, spread over about 6 dB.
_LOUDNESS_STEPS = np.exp(0.7 * np.array([-1 / 3, 0.0, 1 / 3]))
# Corner of the first-difference tilt at brightness 1: above it the hiss rises.
_TILT_CORNER_HZ = 1250.0
# Slow level wander of the rush (dB standard deviation at flow 0.5) and how
# fast it moves; a real stream surges a little every few seconds.
_LEVEL_WANDER_DB = 1.5
_LEVEL_WANDER_HZ = 0.15
# Faster wobble of brightness and level: the rush "churns" several times a
# second. Churn values are random knots about this far apart (rounded to a
# power-of-two number of samples), joined by straight lines.
_CHURN_KNOT_S = 0.09
_CHURN_TILT = 0.45
_CHURN_DB = 0.8
# Power split of the default mix: bubbles this many dB below the rush.
_DEFAULT_BUBBLE_LEVEL_DB = -3.0
_DEFAULT_BUBBLE_RATE_HZ = 60.0


def _control_hop(sample_rate: int) -> int:
    """Samples per control step: a power of two dividing BLOCK_SIZE, ~300 Hz control rate."""
    hop = 2 ** int(round(math.log2(sample_rate / 300.0)))
    return int(min(max(hop, 16), 1024))


def _bubble_grain(radius_m: float, sample_rate: int) -> np.ndarray:
    """One bubble (van den Doel), float32, from onset until it decays below ``_GRAIN_FLOOR``."""
    f0 = 3.0 / radius_m
    damping = 0.043 * f0 + 0.0014 * f0**1.5
    sigma = 0.1 * damping
    length = int(math.ceil(math.log(1.0 / _GRAIN_FLOOR) / damping * sample_rate))
    t = np.arange(length) / sample_rate
    grain = np.sin(2 * np.pi * f0 * (t + 0.5 * sigma * t * t)) * np.exp(-damping * t)
    # A bubble's onset is fast but not instantaneous (~0.2 ms); the fade-out
    # over the last 10 % removes the small step left by truncation.
    grain *= 1.0 - np.exp(-t / 0.0002)
    fade = max(1, length // 10)
    grain[-fade:] *= np.linspace(1.0, 0.0, fade)
    return grain.astype(np.float32)


@register_layer("river")
class River(SpanLayer["River.Params"]):
    """A gentle stream: diffuse rushing water with a babble of small bubbles."""

    description = "A gentle stream: rushing water noise with a babble of small bubbles."
    span_blocks = _SPAN_BLOCKS
    ranges = {
        "flow": (0.0, 1.0),
        "bubble_rate_hz": (0.0, 1000.0),
        "bubble_level_db": (-60.0, 20.0),
        "bubble_min_radius_mm": (0.5, 20.0),
        "bubble_max_radius_mm": (0.5, 20.0),
        "bed_center_hz": (100.0, 4000.0),
        "brightness": (0.0, 1.0),
        "stereo_width": (0.0, 1.0),
    }

    @dataclass(frozen=True)
    class Params:
        """River parameters."""

        flow: float = 0.5
        """Overall activity 0..1: scales bubble density (0.2x..1.8x) and the rush level (-4..+4 dB)."""
        bubble_rate_hz: float = _DEFAULT_BUBBLE_RATE_HZ
        """Bubbles per second at flow 0.5."""
        bubble_level_db: float = _DEFAULT_BUBBLE_LEVEL_DB
        """Power of the bubbling relative to the rush, at the default bubble rate."""
        bubble_min_radius_mm: float = 0.8
        """Smallest bubble radius (highest pitch, about 3750 Hz at 0.8 mm)."""
        bubble_max_radius_mm: float = 4.0
        """Largest bubble radius (lowest pitch, about 750 Hz at 4 mm)."""
        bed_center_hz: float = 800.0
        """Centre of the rushing-water band."""
        brightness: float = 0.5
        """0..1: how much hiss the rush has above a few kilohertz."""
        stereo_width: float = 1.0
        """0..1: how widely bubbles spread across the stereo field."""

    @classmethod
    def check_params(cls, params: River.Params) -> None:
        """Raise SoundscapeError when a parameter value is out of range."""
        super().check_params(params)
        if params.bubble_min_radius_mm > params.bubble_max_radius_mm:
            raise SoundscapeError(
                f"layer {cls.name!r}: bubble_min_radius_mm must not exceed bubble_max_radius_mm "
                f"({params.bubble_min_radius_mm:g} > {params.bubble_max_radius_mm:g})"
            )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        p = self.params
        fs = self.sample_rate
        self._hop = _control_hop(fs)

        self._init_bed(p, fs)

        # Gains are computed at knots and joined by straight lines: evaluating
        # exp and sqrt per control step costs more than the audio filter.
        knot = 2 ** int(round(math.log2(_CHURN_KNOT_S * fs)))
        knot = min(max(knot, self._hop), _SPAN)
        self._knot_steps = knot // self._hop
        self._n_knots = _SPAN // knot
        self._knot_frac = np.arange(1, self._knot_steps + 1, dtype=np.float32)[
            None, :, None
        ] / np.float32(self._knot_steps)
        # The slow level wander: an AR(1) process of unit variance with one new
        # value per span, interpolated at the knots.
        self._wander_pole = math.exp(-2 * math.pi * _LEVEL_WANDER_HZ * _SPAN / fs)
        self._wander = np.zeros(2)
        self._wander_frac = (np.arange(1, self._n_knots + 1) / self._n_knots)[:, None]
        self._last_knot = self._knot_gains(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)))[
            0
        ].astype(np.float32)

        self._init_bubbles(p, fs)

    # -- the rush ---------------------------------------------------------

    def _init_bed(self, p: River.Params, fs: int) -> None:
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        center = min(p.bed_center_hz, 0.2 * fs)
        # Resonant-ish high-pass under the band, one-pole low-pass above it
        # (the brownish -6 dB/oct slope of turbulent water), and a steeper
        # low-pass that keeps the tilt boost from reaching ultrasonics.
        # Second-order sections, so the filter can run in float32 (the same
        # cascade expanded into one order-5 polynomial drifts by ~1 % there).
        sos = np.vstack(
            [
                rbj_biquad(BiquadKind.HIGH, 0.5 * center, 1.1, fs),
                signal.butter(1, center, fs=fs, output="sos"),
                signal.butter(2, min(9000.0, 0.42 * fs), fs=fs, output="sos"),
            ]
        )
        h = impulse_response(sos)
        power = float(np.dot(h, h))
        # rho: lag-1 autocorrelation of the filtered noise, needed to keep the
        # tilt (y + k * dy) from changing the level as k moves.
        self._bed_rho = float(np.dot(h[:-1], h[1:]) / power)
        # int16 uniform noise has variance ~ 32768^2 / 3; fold its scale in.
        noise_std = INT16_NOISE_STD
        sos[0, :3] /= math.sqrt(power) * noise_std
        self._bed_sos = sos.astype(np.float32)
        self._bed_zi = np.zeros((len(sos), 2, 2), dtype=np.float32)
        self._bed_last = np.zeros(2, dtype=np.float32)

        # The bubbles' share of the power, so that the total stays near nominal.
        bubble_share = 10 ** (p.bubble_level_db / 10) * p.bubble_rate_hz / _DEFAULT_BUBBLE_RATE_HZ
        self._bed_power = 10 ** (NOMINAL_RMS_DB / 10) / (1.0 + bubble_share)
        self._wander_db = _LEVEL_WANDER_DB * (0.5 + p.flow)
        # Mean of 10^(x/10) for Gaussian x of std s dB is s^2 ln10 / 20 dB
        # above 0 dB: remove it so the wobble leaves the long-term level alone.
        bias_db = (self._wander_db**2 + _CHURN_DB**2) * math.log(10.0) / 20.0
        self._bed_level_db = 10 * math.log10(self._bed_power) + 8.0 * (p.flow - 0.5) - bias_db
        self._tilt_k0 = p.brightness * fs / (2 * math.pi * _TILT_CORNER_HZ)

    def _knot_gains(self, tilt: np.ndarray, level: np.ndarray, wander: np.ndarray) -> np.ndarray:
        """Gains (for y[n] L, R, then for y[n-1] L, R) from unit-variance control values."""
        k = self._tilt_k0 * np.exp(_CHURN_TILT * np.clip(tilt, -3.0, 3.0))
        # Power of (1 + k) y[n] - k y[n-1] relative to y's: divide it out so the
        # tilt moves brightness, not level.
        power = 1.0 + 2.0 * (1.0 - self._bed_rho) * k * (1.0 + k)
        ln10_20 = math.log(10.0) / 20.0
        amp = np.exp(
            ln10_20 * (self._bed_level_db + _CHURN_DB * level + self._wander_db * wander)
        ) / np.sqrt(power)
        return np.concatenate([amp * (1.0 + k), amp * k], axis=1)

    def _bed_gains(self) -> tuple[np.ndarray, np.ndarray]:
        """Gains for ``y[n]`` and for ``y[n-1]``, one row per control step of the span."""
        noise = self.rng.standard_normal((self._n_knots, 6))
        pole = self._wander_pole
        start = self._wander
        self._wander = pole * start + math.sqrt(1 - pole * pole) * noise[0, 4:]
        wander = start + (self._wander - start) * self._wander_frac
        knots = self._knot_gains(noise[:, :2], noise[:, 2:4], wander).astype(np.float32)
        starts = np.concatenate([self._last_knot[None], knots[:-1]])
        self._last_knot = knots[-1]
        steps = (starts[:, None, :] + (knots - starts)[:, None, :] * self._knot_frac).reshape(-1, 4)
        return steps[:, :2], steps[:, 2:]

    # -- the babble -------------------------------------------------------

    def _init_bubbles(self, p: River.Params, fs: int) -> None:
        # Highest instantaneous pitch of a grain is ~1.7 f0 (the rise over its
        # life); keep it under Nyquist at low sample rates.
        r_floor = 3.0 * 1.7 / (0.45 * fs)
        r_min = max(p.bubble_min_radius_mm * 1e-3, r_floor)
        r_max = max(p.bubble_max_radius_mm * 1e-3, r_min)
        radii = np.geomspace(r_min, r_max, _BANK_SIZE)
        mono = [_bubble_grain(r, fs) for r in radii]
        amps = (radii / 1e-3) ** 1.5
        energies = np.array([float(np.sum(g.astype(np.float64) ** 2)) for g in mono]) * amps**2
        weights = radii ** (-_SIZE_EXPONENT)
        probs = weights / weights.sum()
        self._cdf = np.cumsum(probs)
        self._cdf[-1] = 1.0
        amp_ms = float(np.mean(_LOUDNESS_STEPS**2))
        self._rate_hz = p.bubble_rate_hz * (0.2 + 1.6 * p.flow)
        # Per-bubble scale so that at the default rate the bubbling sits
        # bubble_level_db under the rush; equal-power panning gives each
        # channel half of a bubble's energy.
        target = self._bed_power * 10 ** (p.bubble_level_db / 10)
        mean_energy = float(np.sum(probs * energies)) * amp_ms * 0.5
        scale = amps * math.sqrt(target * fs / (_DEFAULT_BUBBLE_RATE_HZ * mean_energy))

        # Stereo grains with loudness, level and time difference baked in, for
        # a few loudnesses and positions across the field: a bubble then costs
        # one slice add, which keeps the babble as cheap as the rush.
        itd_max = int(round(_ITD_MAX_S * fs * p.stereo_width))
        pans = np.linspace(-1.0, 1.0, _PAN_POSITIONS) * p.stereo_width
        self._bank = []
        for grain, g in zip(mono, scale):
            row = []
            for loud, pan in itertools.product(_LOUDNESS_STEPS, pans):
                angle = (math.pi / 4) * (1 + pan)
                delay = int(round(abs(pan) / max(p.stereo_width, 1e-9) * itd_max)) if itd_max else 0
                stereo = np.zeros((len(grain) + itd_max, 2), dtype=np.float32)
                # The far ear hears the bubble later.
                d_left, d_right = (delay, 0) if pan > 0 else (0, delay)
                stereo[d_left : d_left + len(grain), 0] = loud * g * math.cos(angle) * grain
                stereo[d_right : d_right + len(grain), 1] = loud * g * math.sin(angle) * grain
                row.append(stereo)
            self._bank.append(row)
        self._n_variants = len(self._bank[0])
        longest = max(len(g) for g in mono) + itd_max
        self._tail = np.zeros((_SPAN + longest, 2), dtype=np.float32)

    def _add_bubbles(self) -> None:
        rng = self.rng
        count = int(rng.poisson(self._rate_hz * _SPAN / self.sample_rate))
        if count == 0:
            return
        starts = rng.integers(0, _SPAN, count).tolist()
        u = rng.random((2, count))
        kinds = np.searchsorted(self._cdf, u[0]).tolist()
        variants = (u[1] * self._n_variants).astype(int).tolist()
        tail = self._tail
        bank = self._bank
        for start, kind, variant in zip(starts, kinds, variants):
            grain = bank[kind][variant]
            tail[start : start + len(grain)] += grain

    # -- rendering --------------------------------------------------------

    def _render_span(self, start: int) -> np.ndarray:
        """Render the next span (the stream's state carries on from the last one)."""
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        n, hop = _SPAN, self._hop
        noise = int16_noise(self.rng, (2, n))
        y, self._bed_zi = signal.sosfilt(self._bed_sos, noise, axis=-1, zi=self._bed_zi)

        # Gains are held for one control step (~3 ms). They move by well
        # under 0.1 dB per step, so the steps vanish under the noise itself.
        g_now, g_prev = self._bed_gains()
        out, self._bed_last = held_tilt(y, g_now, g_prev, hop, self._bed_last)

        self._add_bubbles()
        tail = self._tail
        out += tail[:n]
        tail[:-n] = tail[n:]
        tail[-n:] = 0.0

        soft_limit(out)
        return out


river = layer_function("river")


@register_layer("stream")
class Stream(River):
    """A small brook: smaller, higher, busier bubbles than the river, over a brighter rush."""

    description = "A small brook close by: quick high bubbles over a bright trickle."

    @dataclass(frozen=True)
    class Params(River.Params):
        """Stream parameters (the river's, with a brook's defaults)."""

        bubble_rate_hz: float = 150.0
        bubble_level_db: float = -2.0
        bubble_min_radius_mm: float = 0.5
        bubble_max_radius_mm: float = 2.5
        bed_center_hz: float = 1200.0
        brightness: float = 0.7


@register_layer("waterfall")
class Waterfall(River):
    """A waterfall: a broad roar with big splashing bubbles all through it."""

    description = "A waterfall or weir: a broad roar full of splashes, large and small."

    @dataclass(frozen=True)
    class Params(River.Params):
        """Waterfall parameters (the river's, with a waterfall's defaults)."""

        flow: float = 0.6
        bubble_rate_hz: float = 100.0
        bubble_level_db: float = 1.0
        bubble_min_radius_mm: float = 0.6
        bubble_max_radius_mm: float = 6.0
        bed_center_hz: float = 600.0
        brightness: float = 0.8


stream = layer_function("stream")
waterfall = layer_function("waterfall")
