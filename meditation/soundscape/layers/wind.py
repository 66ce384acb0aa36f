"""Wind: air moving past, driven by one slowly gusting wind speed.

Perceptual model (after A. Farnell, *Designing Sound*, ch. 41): what we hear
as wind is not the air but what it hits, and every part of the sound follows
one wind-speed signal. Here that speed is a smooth random process whose gusts
last a few seconds, plus a slower drift underneath. It drives:

* the *body*: two bands of noise, a low roar that follows the speed and a
  higher rush that gusts mostly on its own, so gusts differ across the
  spectrum (real wind's band envelopes are only partly together: cross-band
  correlation ~0.34). Level follows the speed through a skewed law: long
  lulls and short strong gusts, heavy-tailed as real wind's envelopes are
  (kurtosis ~1, where a symmetric swell measures below 0);
* *whistles*: two narrow, almost sinusoidal tones (air over edges and
  wires) whose pitch follows the speed and wanders a little, and which only
  sound when the speed is high; a fast random shimmer of their amplitude
  gives them the breathy flutter of narrow-band noise.

Each ear gets the same speed signal with a different delay, so a gust
arrives on one side and travels across to the other; the noise itself is
independent per ear, so the body is wide and diffuse.

Everything slow is computed at random knots a few tens of milliseconds apart
and joined by straight lines, which keeps the layer about as cheap as
filtered noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import (
    BLOCK_SIZE,
    NOMINAL_RMS_DB,
    BiquadKind,
    SpanLayer,
    noise_gain,
    rbj_biquad,
    register_layer,
    soft_limit,
)

# scipy.signal is imported where a layer runs: it takes most of a second to
# load, and reading or checking a preset (batch, studio) needs none of it.
from .dsp import NoiseBed, layer_function

__all__ = ["Wind", "wind"]

# Blocks per span (see SpanLayer).
_SPAN_BLOCKS = 4
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE
# Spacing of control knots (rounded to a power-of-two number of samples).
_KNOT_S = 0.05
# Level swing at gustiness 1: the speed deviation u (about -1.3..1.3, std
# ~0.8) times this many dB.
_GUST_DEPTH_DB = 12.0
# Skew of the gusts' level law (see _gust_shape) and its bound.
_GUST_SKEW = 0.9
_GUST_CAP = 2.2
# Share of the brightness that follows the level's gusts; the rest gusts on
# its own, so low and high bands of the body rise and fall at different times.
_TILT_SHARED = 0.1
# Share of the body's power in its high band when both bands are calm.
_HIGH_SHARE = 0.35
# Share of the speed variance in the slow drift under the gusts, and how much
# slower that drift is than the gusts.
_DRIFT_SHARE = 0.15
_DRIFT_SLOWER = 5.0
# How strongly gusts brighten the body (natural-log change of the tilt per
# unit of speed deviation at gustiness 1).
# Tilt corner, as a multiple of center_hz: above it the tilt lifts the body.
_TILT_CORNER = 1.2
# Whistle pitches as multiples of center_hz, and their placement (left gain,
# right gain): one leans left, one right.
_WHISTLE_RATIOS = (2.7, 3.6)
_WHISTLE_PANS = ((0.88, 0.47), (0.47, 0.88))
# Whistles fade in between these speed deviations (in units of the speed's std).
_WHISTLE_ON = 0.5
_WHISTLE_FULL = 1.1
# Whistle amplitude relative to the body at full gate and whistle = 1.
_WHISTLE_GAIN = 0.8
# Pitch follows speed (log-frequency per unit speed) and wanders a little.
_WHISTLE_BEND = 0.18
_WHISTLE_WANDER = 0.06
# Depth of the fast random amplitude shimmer of the whistles.
_SHIMMER = 0.35


def _pow2(x: float) -> int:
    return 2 ** int(round(math.log2(x)))


def _unit_lowpass(cutoff_hz: float, rate_hz: float) -> np.ndarray:
    """Two one-pole low-passes in cascade (one SOS row), scaled to unit output std for unit white input."""
    pole = math.exp(-2 * math.pi * cutoff_hz / rate_hz)
    sos = np.array([[(1 - pole) ** 2, 0.0, 0.0, 1.0, -2 * pole, pole * pole]])
    sos[0, :3] /= noise_gain(sos)
    return sos


def _gust_shape(g: np.ndarray) -> np.ndarray:
    """Level of the body (in units of the gust depth) for speed ``g``: lulls are long and gusts short and strong.

    Real wind's band envelopes are heavy-tailed (kurtosis ~1): a symmetric
    swell reads as a machine. An exponential of the speed, centred, gives
    the tail; the tanh bounds the rare extremes.
    """
    c = _GUST_SKEW
    return _GUST_CAP * np.tanh(((np.exp(c * g) - math.exp(c * c / 2)) / c) / _GUST_CAP)


def _speed(g: np.ndarray) -> np.ndarray:
    """Bounded speed deviation: gusts saturate instead of running away."""
    return 1.3 * np.tanh(g / 1.3)


@register_layer("wind")
class Wind(SpanLayer["Wind.Params"]):
    """Gusting wind: diffuse band noise with occasional whistles, all following one speed."""

    description = (
        "Gusting wind: soft rushing air whose gusts travel across the field, with faint whistles."
    )
    span_blocks = _SPAN_BLOCKS
    ranges = {
        "gust_s": (0.5, 60.0),
        "gustiness": (0.0, 1.0),
        "whistle": (0.0, 1.0),
        "center_hz": (100.0, 3000.0),
        "travel_s": (0.0, 5.0),
    }

    @dataclass(frozen=True)
    class Params:
        """Wind parameters."""

        gust_s: float = 4.0
        """Typical length of a gust (rise and fall), in seconds."""
        gustiness: float = 0.6
        """0..1: depth of the level drift between lulls and gusts (about 4-5 dB std at 0.6)."""
        whistle: float = 0.3
        """0..1: loudness of the whistles that sound in strong gusts."""
        center_hz: float = 500.0
        """Centre of the body's band; the whistles sit about 1.5 octaves above."""
        travel_s: float = 0.6
        """How long a gust takes to cross from the left ear to the right."""

    def __init__(self, **kwargs: Any) -> None:
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        p = self.params
        fs = self.sample_rate
        self._hop = min(max(_pow2(fs / 300.0), 16), 1024)
        self._n_control = _SPAN // self._hop
        knot = min(max(_pow2(_KNOT_S * fs), self._hop), _SPAN)
        self._knot_steps = knot // self._hop
        self._n_knots = _SPAN // knot
        knot_rate = fs / knot
        self._knot_frac = (np.arange(1, self._knot_steps + 1) / self._knot_steps)[None, :, None]
        self._ramp = (np.arange(self._hop, dtype=np.float32) / np.float32(self._hop))[None, None, :]

        self._init_body(p, fs)

        # Speed: gusts (and the whistles' pitch wander, columns 1-2) from one
        # two-pole low-pass at knot rate; the slow drift is an AR(1) process
        # stepped once per span and interpolated across it.
        gust_hz = 0.35 / p.gust_s
        self._gust_sos = _unit_lowpass(gust_hz, knot_rate)
        self._drift_pole = math.exp(-2 * math.pi * gust_hz / _DRIFT_SLOWER * _SPAN / fs)
        self._drift_frac = np.arange(1, self._n_knots + 1) / self._n_knots
        # Start in the middle of the weather rather than from dead calm: run
        # the gust filter over a few time constants of noise.
        burn = int(8 * knot_rate / (2 * math.pi * gust_hz)) + 1
        _, self._gust_zi = signal.sosfilt(
            self._gust_sos, self.rng.standard_normal((burn, 4)), axis=0, zi=np.zeros((1, 2, 4))
        )
        self._drift = float(self.rng.standard_normal())
        # Gust values not yet heard by the right ear (left hears them first).
        self._delay_knots = int(round(p.travel_s * knot_rate))
        self._history = np.full(self._delay_knots, self._gust_now())

        self._init_whistles(p, fs)
        self._last_knot = self._knot_values(
            np.full((1, 2), self._gust_now()),
            np.zeros((1, 2)),
            np.zeros((1, 2)),
            np.full((1, 1), float(self._gust_zi[0, 0, 3])),
        )[0]

    def _gust_now(self) -> float:
        """Current speed value implied by the carried filter state (for initial conditions)."""
        # The output of the (one-section, transposed direct form) filter at
        # the next step with zero input is its first state value; mix in the
        # drift the same way as in _control.
        fast = float(self._gust_zi[0, 0, 0])
        return math.sqrt(1 - _DRIFT_SHARE) * fast + math.sqrt(_DRIFT_SHARE) * self._drift

    # -- body ------------------------------------------------------------

    def _init_body(self, p: Wind.Params, fs: int) -> None:
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        center = min(p.center_hz, 0.15 * fs)
        # Two bands, each gusting on its own: the low roar and the higher
        # rush of air over edges. One band-pass section each.
        # The low band falls 12 dB/oct above its corner, so that even in a
        # strong gust it does not spill over into the high band's gusts.
        low = np.vstack(
            [
                rbj_biquad(BiquadKind.HIGH, 0.4 * center, 0.7, fs),
                rbj_biquad(BiquadKind.LOW, 1.6 * center, 0.8, fs),
            ]
        )
        high = signal.butter(
            1, [1.6 * center, min(4.0 * center, 0.45 * fs)], btype="bandpass", fs=fs, output="sos"
        )
        self._low_bed = NoiseBed(low)
        self._high_bed = NoiseBed(high)
        self._depth_db = _GUST_DEPTH_DB * p.gustiness

        # Long-term power: average the gust level laws over the (standard
        # normal) speeds of the two bands with Gauss-Hermite quadrature, and
        # add the whistles' expected power, so the total sits at NOMINAL_RMS_DB.
        nodes, weights = np.polynomial.hermite_e.hermegauss(24)
        weights = weights / weights.sum()
        g, bright = nodes[:, None], nodes[None, :]
        low, high = self._band_levels(g, bright)
        body_ms = low**2 + _HIGH_SHARE * high**2
        u = _speed(g)
        gate = np.clip((u - _WHISTLE_ON) / (_WHISTLE_FULL - _WHISTLE_ON), 0.0, 1.0)
        whistle_amp = p.whistle * _WHISTLE_GAIN * gate * low
        shimmer_ms = 1.0 + _SHIMMER**2 * (2.0 / 3.0)  # linear interpolation of unit knots
        pan_ms = float(np.mean([left**2 + right**2 for left, right in _WHISTLE_PANS]))
        # Each whistle is a sine (mean square amp^2 / 2); two whistles spread
        # over two channels give one whistle's worth per channel on average.
        whistle_ms = whistle_amp**2 / 2 * shimmer_ms * pan_ms
        total = float(np.sum(weights[:, None] * weights[None, :] * (body_ms + whistle_ms)))
        self._level0 = math.sqrt(10 ** (NOMINAL_RMS_DB / 10) / total)

    def _band_levels(self, g: np.ndarray, bright: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Relative levels of the body's low part and of its high (first-difference) part.

        The low part gusts with the speed ``g``; the high part partly with it
        and partly on its own (``bright``), so gusts differ across the bands.
        """
        high_g = _TILT_SHARED * g + math.sqrt(1 - _TILT_SHARED**2) * bright
        db = math.log(10.0) / 20.0 * self._depth_db
        return np.exp(db * _gust_shape(g)), np.exp(db * _gust_shape(high_g))

    def _knot_values(
        self, g: np.ndarray, shimmer: np.ndarray, wander: np.ndarray, bright: np.ndarray
    ) -> np.ndarray:
        """Per-knot control values from the speed ``g`` of each ear, shape (n, 8).

        Columns: gain of the low band (L, R), of the high band (L, R),
        whistle amplitude (A, B), whistle log-pitch offset (A, B).
        """
        u = _speed(g)
        low, high = self._band_levels(g, bright)
        low = self._level0 * low
        high = self._level0 * math.sqrt(_HIGH_SHARE) * high
        gate = np.clip((u - _WHISTLE_ON) / (_WHISTLE_FULL - _WHISTLE_ON), 0.0, 1.0)
        whistle = self._whistle_gain * gate * low * np.maximum(1.0 + _SHIMMER * shimmer, 0.0)
        bend = _WHISTLE_BEND * u + _WHISTLE_WANDER * wander
        return np.concatenate([low, high, whistle, bend], axis=1)

    # -- whistles --------------------------------------------------------

    def _init_whistles(self, p: Wind.Params, fs: int) -> None:
        self._whistle_gain = p.whistle * _WHISTLE_GAIN
        ceiling = 0.4 * fs
        self._whistle_hz = np.array([min(p.center_hz * r, ceiling / 1.5) for r in _WHISTLE_RATIOS])
        self._phase = np.zeros(2)
        self._ceiling_hz = ceiling
        # (channel, whistle) gains
        self._whistle_pans = np.array(_WHISTLE_PANS, dtype=np.float32).T
        self._silent = 10 ** (-50 / 20) * self._level0

    def _whistles(self, steps: np.ndarray, prev_step: np.ndarray) -> np.ndarray | None:
        """The whistles of the span mixed to stereo, shape (_SPAN, 2), or None when silent.

        ``steps`` holds the control values reached at the end of each control
        step; ``prev_step`` the last row of the previous span's.
        """
        freq = np.minimum(self._whistle_hz[:, None] * np.exp(steps[:, 6:8].T), self._ceiling_hz)
        step_phase = 2 * np.pi * freq * self._hop / self.sample_rate
        # Phase at the start of each control step, carried in float64 and
        # kept running while a whistle is silent so it resumes smoothly;
        # within a step the frequency is constant, so the phase is continuous.
        phase0 = self._phase[:, None] + np.concatenate(
            [np.zeros((2, 1)), np.cumsum(step_phase, axis=1)[:, :-1]], axis=1
        )
        self._phase = (phase0[:, -1] + step_phase[:, -1]) % (2 * np.pi)
        amp = steps[:, 4:6].T
        amp_start = np.concatenate([prev_step[None, 4:6], steps[:-1, 4:6]]).T
        # Only whistles that reach audibility (-50 dB under the mean body
        # level) this span are synthesised: most of the time neither is.
        loud = np.maximum(amp.max(axis=1), amp_start.max(axis=1)) > self._silent
        if not loud.any():
            return None
        rows = np.flatnonzero(loud)
        ramp = self._ramp
        phase = (phase0[rows] % (2 * np.pi)).astype(np.float32)[:, :, None]
        phase = phase + step_phase[rows].astype(np.float32)[:, :, None] * ramp
        tone = np.sin(phase)
        # Amplitude is ramped per sample: steps would be audible on a sine.
        a0 = amp_start[rows].astype(np.float32)[:, :, None]
        a1 = amp[rows].astype(np.float32)[:, :, None]
        tone *= a0 + (a1 - a0) * ramp
        mixed = self._whistle_pans[:, rows] @ tone.reshape(len(rows), -1)
        stereo = np.empty((_SPAN, 2), dtype=np.float32)
        stereo[:, 0] = mixed[0]
        stereo[:, 1] = mixed[1]
        return stereo

    # -- rendering -------------------------------------------------------

    def _control(self) -> tuple[np.ndarray, np.ndarray]:
        """Control values for the span, one row per control step (see _knot_values), and the previous span's last knot."""
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        n = self._n_knots
        noise = self.rng.standard_normal((n + 1, 6))
        gust, self._gust_zi = signal.sosfilt(
            self._gust_sos, noise[:n, [0, 1, 2, 5]], axis=0, zi=self._gust_zi
        )
        drift0 = self._drift
        self._drift = self._drift_pole * drift0 + math.sqrt(1 - self._drift_pole**2) * float(
            noise[n, 0]
        )
        drift = drift0 + (self._drift - drift0) * self._drift_frac
        speed = math.sqrt(1 - _DRIFT_SHARE) * gust[:, 0] + math.sqrt(_DRIFT_SHARE) * drift
        # The left ear hears the speed now, the right ear travel_s later.
        if self._delay_knots:
            both = np.concatenate([self._history, speed])
            right = both[:n]
            self._history = both[n:]
        else:
            right = speed
        g = np.stack([speed, right], axis=1)
        # Brightness gusts are heard in both ears at once (the right ear's
        # delay is for the level's gust front).
        knots = self._knot_values(g, noise[:n, 3:5], gust[:, 1:3], gust[:, 3:4])
        starts = np.concatenate([self._last_knot[None], knots[:-1]])
        steps = (starts[:, None, :] + (knots - starts)[:, None, :] * self._knot_frac).reshape(
            -1, knots.shape[1]
        )
        prev = self._last_knot
        self._last_knot = knots[-1]
        return steps, prev

    def _render_span(self, start: int) -> np.ndarray:
        """Render the next span (the stream's state carries on from the last one)."""

        n, hop = _SPAN, self._hop
        out = self._low_bed.render_stereo(self.rng, n)
        high = self._high_bed.render_stereo(self.rng, n)
        steps, prev_knot = self._control()
        # Band gains are held for one control step (~3 ms); they move far
        # less than 0.1 dB per step, which vanishes under the noise.
        gains = steps[:, :4].astype(np.float32)
        out *= np.repeat(gains[:, :2], hop, axis=0)
        high *= np.repeat(gains[:, 2:], hop, axis=0)
        out += high

        # Whistle amplitude is ramped per sample: a sine would show steps.
        tones = self._whistles(steps, prev_knot)
        if tones is not None:
            out += tones

        soft_limit(out)
        return out


wind = layer_function("wind")
