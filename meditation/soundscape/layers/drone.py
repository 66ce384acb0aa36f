"""A warm, slowly evolving tonal bed.

Perceptual model: a drone reads as "warm" when its energy sits in a few low,
consonant partials (root, fifth, octave, twelfth, double octave) with a
gently falling spectrum, and as "alive" rather than electronic when nothing in
it is perfectly still.  Two sources of motion do that here:

* every partial is a centre voice plus, in each ear, a quieter voice a few
  cents off, so it beats slowly (a fraction of a hertz) like a chorus of
  slightly mistuned strings -- at a different rate left and right;
* every partial's level drifts on its own over tens of seconds, and the
  whole spectrum tilts brighter and darker on a slower cycle, which the ear
  hears as a filter opening and closing.

The side voices make the bed wide without any reverb, while the shared
centre keeps it solid in mono.  A little band-passed noise ("air") keeps it
from sounding like a test tone.

Implementation: sinusoids are summed with one small matrix product per block
and voice group (centre, left side, right side). Over a sub-block of ``_SUB``
samples each voice is ``(alpha + beta*m) * sin(phi + w*m)``, which expands
into a fixed table of ``cos(w*m)``, ``sin(w*m)``, ``m*cos(w*m)`` and
``m*sin(w*m)`` times four coefficients that depend only on the level ramp and
the phase at the sub-block start.  Levels are linear ramps between control points at the
sub-block edges (a control rate of ~43 Hz at 44.1 kHz), so amplitude moves
without zipper steps.  Everything but the air noise is a function of the
absolute sample index, so phases never drift and chunking cannot matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy.signal is imported where a layer runs: it takes most of a second to
# load, and reading or checking a preset (batch, studio) needs none of it.
from ...errors import SoundscapeError
from .base import BLOCK_SIZE, NOMINAL_RMS_DB, Cue, SpanLayer, noise_gain, register_layer
from .dsp import INT16_NOISE_STD, int16_noise, layer_function

__all__ = ["Drone", "drone"]

# Sub-block length for the sinusoid tables; a power of two dividing BLOCK_SIZE.
_SUB = 1024
_N_SUB = BLOCK_SIZE // _SUB
# Blocks per span (see SpanLayer).
_SPAN_BLOCKS = 8

# Partials as frequency ratios to the root, with their level at brightness 0.5
# before the brightness tilt.  The fifth and the octave carry the warmth; the
# twelfth and double octave only add shine.
_RATIOS = np.array([1.0, 1.5, 2.0, 3.0, 4.0])
_BASE_AMPS = np.array([1.0, 0.75, 0.8, 0.55, 0.45])
# Centre and side voice levels; unequal so the beating never dips to silence
# (a full-depth beat sounds like tremolo, not like a chorus).
_VOICE_AMPS = np.array([1.0, 0.6])
# Partials are dropped above this fraction of the sample rate (no aliasing).
_MAX_FRACTION_OF_SR = 0.45


@register_layer("drone")
class Drone(SpanLayer["Drone.Params"]):
    """Detuned partial pairs with slow level and tilt drift, plus a breath of air."""

    description = "A warm, slowly evolving tonal bed of detuned partials (root, fifth, octave)."
    cue_actions = frozenset()
    span_blocks = _SPAN_BLOCKS
    ranges = {
        "root_hz": (20.0, 1000.0),
        "detune_cents": (0.0, 50.0),
        "brightness": (0.0, 1.0),
        "motion_s": (2.0, 600.0),
        "motion_depth_db": (0.0, 12.0),
        "air_db": (-120.0, 0.0),
    }

    @dataclass(frozen=True)
    class Params:
        root_hz: float = 110.0
        """Pitch of the lowest partial, in hertz (110 = A2)."""
        detune_cents: float = 6.0
        """Spread between the two voices of each partial, in cents; sets how fast they beat."""
        brightness: float = 0.5
        """Spectral tilt from 0 (dark, mostly root) to 1 (upper partials as loud as the root)."""
        motion_s: float = 30.0
        """Typical period of the slow level and tilt drift, in seconds."""
        motion_depth_db: float = 4.0
        """How far each partial's level drifts, in dB either way."""
        air_db: float = -22.0
        """Level of the band-passed noise relative to the tones, in dB (-120 turns it off)."""

    def __init__(self, **kwargs: Any) -> None:
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        p = self.params
        sr = self.sample_rate
        rng = self.rng
        n_part = len(_RATIOS)

        # Brightness tilts the partials around the root: 0 -> ratio^-1.5, 1 -> flat.
        tilt = -1.5 * (1.0 - p.brightness)
        part_amp = _BASE_AMPS * _RATIOS**tilt
        part_amp[_RATIOS * p.root_hz > _MAX_FRACTION_OF_SR * sr] = 0.0

        # Three voices per partial: a centre voice in both channels at the nominal
        # pitch, plus one side voice per channel, detuned up on the left and down on
        # the right by a random share of detune_cents.  Each channel beats against
        # the shared centre at its own rate, so the image is wide, yet the mono
        # fold-down never loses a whole partial (the centre outweighs both sides).
        spread = p.detune_cents * (1.0 + 0.3 * rng.uniform(-1, 1, (2, n_part)))
        cents = np.stack([np.zeros(n_part), spread[0], -spread[1]])  # (voice, partial)
        self._freqs = (p.root_hz * _RATIOS[None, :] * 2.0 ** (cents / 1200.0)).reshape(-1)
        self._phase0 = rng.uniform(0, 1, self._freqs.shape)  # in cycles
        self._osc_partial = np.tile(np.arange(n_part), 3)
        voice_amp = np.concatenate([part_amp * _VOICE_AMPS[0]] + 2 * [part_amp * _VOICE_AMPS[1]])
        self._voice_amp = voice_amp
        # Oscillators by group: the centre voices (both ears), the left side
        # voices and the right side voices. Each is summed once; an ear hears
        # the centre plus its own side.
        self._groups = tuple(np.arange(g * n_part, (g + 1) * n_part) for g in range(3))

        # Level drift: each partial sums two slow sines (periods around motion_s,
        # never commensurate, so the pattern does not repeat), in log amplitude.
        self._mod_period = p.motion_s * rng.uniform(0.6, 1.7, (n_part, 2))
        self._mod_phase = rng.uniform(0, 2 * np.pi, (n_part, 2))
        self._mod_depth = p.motion_depth_db / 20.0 * np.log(10.0) / math.sqrt(2.0)
        # Spectral tilt drift, slower than the level drift: a filter sweep the ear
        # follows as the sound "opening".
        self._tilt_period = p.motion_s * rng.uniform(1.6, 2.4)
        self._tilt_phase = rng.uniform(0, 2 * np.pi)
        self._tilt_depth = 0.35
        self._log_ratio = np.log(_RATIOS)

        # Tables for one sub-block, rows (oscillator, [cos wm, sin wm, m cos wm,
        # m sin wm]), so one matrix product gives the ramped sum in sample
        # order; float32 is ample for m < _SUB.
        m = np.arange(_SUB, dtype=np.float64)
        w = 2 * np.pi * self._freqs / sr
        arg = w[:, None] * m[None, :]
        self._tables = []
        for osc in self._groups:
            table = np.empty((len(osc), 4, _SUB), dtype=np.float32)
            table[:, 0] = np.cos(arg[osc])
            table[:, 1] = np.sin(arg[osc])
            table[:, 2] = m * np.cos(arg[osc])
            table[:, 3] = m * np.sin(arg[osc])
            self._tables.append(table.reshape(4 * len(osc), _SUB))

        # Calibrate the long-term level: average the tonal power over a long grid
        # of control points (the drift is zero-mean in log, not in power).
        grid = np.arange(0, 3600, 0.5)
        levels = self._partial_levels(grid)  # (n_part, len(grid))
        # Per channel: centre and one side voice, incoherent, each a sine (power a^2/2).
        per_part = part_amp**2 * (_VOICE_AMPS[0] ** 2 + _VOICE_AMPS[1] ** 2) / 2.0
        tone_power = float(np.mean(per_part @ levels**2))
        air_rel = 10.0 ** (p.air_db / 10.0) if p.air_db > -100.0 else 0.0
        target = 10.0 ** (NOMINAL_RMS_DB / 10.0)
        self._tone_gain = math.sqrt(target / (tone_power * (1.0 + air_rel)))
        self._air_gain = math.sqrt(target * air_rel / (1.0 + air_rel))

        if self._air_gain > 0.0:
            # Air sits an octave or so above the partials, where breath and bow
            # noise live; a single band-pass section is enough for a bed.
            lo = min(4.0 * p.root_hz, 0.2 * sr)
            hi = min(24.0 * p.root_hz, 0.4 * sr)
            sos = signal.butter(1, [lo, hi], btype="bandpass", fs=sr, output="sos")
            # Uniform int16 noise has variance ~32768^2 / 3; the band-pass makes it
            # Gaussian and removes its DC.  Normalise by the filter's noise gain
            # (folded into the numerator: one pass fewer per span).
            scale = self._air_gain / (noise_gain(sos) * INT16_NOISE_STD)
            self._air_b = (sos[0, :3] * scale).astype(np.float32)
            self._air_a = sos[0, 3:].astype(np.float32)
            self._air_zi = np.zeros(2, dtype=np.float32)
            # The right channel hears the same air ~11 ms later: far longer than the
            # band's correlation time, so the channels are uncorrelated, at half the
            # cost of filtering two noises.
            self._air_tail = np.zeros(max(1, round(0.0113 * sr)), dtype=np.float32)

    def cue_duration_s(self, cue: Cue) -> float:
        raise SoundscapeError(f"layer 'drone' has no cue {cue.action!r} (it takes no cues)")

    def _partial_levels(self, t_s: np.ndarray) -> np.ndarray:
        """Relative level of each partial at times ``t_s`` (seconds): shape (n_part, len(t))."""
        t = np.asarray(t_s, dtype=np.float64)
        mod = np.sin(
            2 * np.pi * t[None, None, :] / self._mod_period[:, :, None]
            + self._mod_phase[:, :, None]
        ).sum(axis=1)
        tilt = self._tilt_depth * np.sin(2 * np.pi * t / self._tilt_period + self._tilt_phase)
        return np.exp(self._mod_depth * mod + self._log_ratio[:, None] * tilt[None, :])

    def _render_span(self, start: int) -> np.ndarray:
        """Render the span from absolute sample ``start``: shape (n, 2).

        The tones depend only on ``start``; the air on the rng stream, which
        is consumed span by span in order, so chunking cannot change it.
        """
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        sr = self.sample_rate
        n_sub = _SPAN_BLOCKS * _N_SUB
        edges = start + _SUB * np.arange(n_sub + 1)  # absolute sample index
        levels = self._partial_levels(edges / sr)[self._osc_partial]  # (n_osc, n_sub+1)
        amp = levels * (self._voice_amp * self._tone_gain)[:, None]
        alpha = amp[:, :-1]
        beta = (amp[:, 1:] - amp[:, :-1]) / _SUB

        # Phase from the absolute sample index, not accumulated: exact at any
        # block, so there is no drift and no dependence on how blocks are asked for.
        cycles = self._freqs[:, None] * (edges[None, :-1] / sr) + self._phase0[:, None]
        phi = 2 * np.pi * (cycles - np.floor(cycles))
        s, c = np.sin(phi), np.cos(phi)

        # sin(phi + wm) (alpha + beta m) = alpha sin(phi) cos(wm) + alpha cos(phi) sin(wm)
        #                                + beta sin(phi) m cos(wm) + beta cos(phi) m sin(wm)
        coef = np.empty((n_sub, len(self._freqs), 4), dtype=np.float32)
        coef[:, :, 0] = (alpha * s).T
        coef[:, :, 1] = (alpha * c).T
        coef[:, :, 2] = (beta * s).T
        coef[:, :, 3] = (beta * c).T
        group_sums = []
        for osc, table in zip(self._groups, self._tables):
            # One small product per block: kept under OpenBLAS's threading
            # threshold on purpose, because a threaded GEMM on a busy machine (TTS
            # running alongside) is many times slower than a single-threaded one.
            rows = coef[:, osc].reshape(_SPAN_BLOCKS, _N_SUB, -1)
            group_sums.append((rows @ table).reshape(-1))
        centre, left, right = group_sums

        n = n_sub * _SUB
        stereo = np.empty((n, 2), dtype=np.float32)
        if self._air_gain > 0.0:
            # int16 noise costs half the random bits of float noise.
            noise = int16_noise(self.rng, n)
            # One section: lfilter runs it as sosfilt would, a little faster.
            air, self._air_zi = signal.lfilter(self._air_b, self._air_a, noise, zi=self._air_zi)
            left += air  # the left ear hears the air now
            d = len(self._air_tail)
            right[:d] += self._air_tail  # the right ear hears it ~11 ms later
            right[d:] += air[:-d]
            self._air_tail = air[-d:].copy()
        left += centre
        right += centre
        # Interleave with two strided copies: much cheaper than a transposing gather.
        stereo[:, 0] = left
        stereo[:, 1] = right
        return stereo


drone = layer_function("drone", takes_cues=True)
