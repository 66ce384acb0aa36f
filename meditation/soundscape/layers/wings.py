"""The beat of great wings.

Perceptual model: a wing beat is heard as a *whoosh* -- a burst of broadband
air noise that swells during the downstroke and dies away more slowly after
it -- plus, for a big enough wing, a soft low *thump* (40-90 Hz) when the
stroke bottoms out and the air under it is pushed away at once.  The whoosh
spectrum falls about 20 dB per decade above a few hundred hertz (one-pole
low-passed noise), and it is a little brighter at the peak of the stroke than
at its edges, which is what makes it sound like a moving surface rather than a
gust.  Timing carries the size: real large birds beat at 2.5-5 Hz; a slower,
slightly irregular rhythm (about 1.2 Hz) reads as something mythic.

Implementation: every flap is an event (start sample, envelopes, random
offsets into two pre-filtered noise buffers, gains).  A block adds the slice of
each event that overlaps it, so a block without flaps costs nothing and an
event spanning several blocks is cut by absolute sample index only.  Each flap
reads its noise from its own random place (forwards or backwards, separately
per channel) in a long buffer, so no two flaps share the same noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy.signal is imported where a layer runs: it takes most of a second to
# load, and reading or checking a preset (batch, studio) needs none of it.
from ...errors import SoundscapeError
from .base import BLOCK_SIZE, NOMINAL_RMS_DB, Cue, Layer, check_range, register_layer
from .dsp import layer_function

__all__ = ["Wings", "wings"]

# Length of the pre-filtered noise buffers.  Flaps read random windows from
# them; at ~1 s per flap and ~20 s of material, overlaps between flaps are
# partial, shifted and differently enveloped, which the ear cannot match.
_NOISE_S = 12.0
# Peak (in sigmas) the noise buffers are softly limited to.
_NOISE_CEILING = 2.5
# Stroke shape as fractions of the flap period: a quick swell, a slower fade.
_ATTACK_FRACTION = 0.22
_RELEASE_FRACTION = 0.6
_MAX_ATTACK_S = 0.35
_MAX_RELEASE_S = 1.0
# Corners of the dark and bright noise layers, relative to brightness_hz.
_DARK_CORNER = 0.5
_BRIGHT_CORNER = 1.3
# The brighter noise layer peaks with the stroke; this much of it at the peak.
_BRIGHT_MIX = 0.5
# Below the whoosh: air pushed by a wing has little energy under ~150 Hz, and
# keeping it out leaves the thump alone in the bass.
_WHOOSH_HIGHPASS_HZ = 150.0
# Thump peak relative to the whoosh noise's RMS at the top of the stroke.
_THUMP_LEVEL = 0.7
# Samples of filter start-up discarded from the noise buffers.
_WARMUP = 4096
# The single "beat" cue: louder, longer, deeper.
_BIG_GAIN = 1.3
_BIG_LENGTH = 1.6
_BIG_THUMP_PITCH = 0.75
_BIG_THUMP_GAIN = 1.5
# A "beats" series: each interval this much longer, each beat this much softer.
_SERIES_STRETCH = 1.25
_SERIES_DECAY = 0.8
_CUE_PARAMS = {
    "beat": {"strength"},
    "beats": {"strength", "count", "interval_s", "stretch"},
}


@dataclass
class _Shape:
    """Precomputed envelopes and thump of one kind of flap (per channel gains apply)."""

    env_dark: np.ndarray
    env_bright: np.ndarray
    thump: np.ndarray
    thump_offset: int
    length: int
    thump_peak: float


@dataclass
class _Flap:
    start: int
    shape: _Shape
    gain: float
    bright: float
    thump_gain: float
    offsets: tuple[int, int]
    reverse: tuple[bool, bool]

    @property
    def end(self) -> int:
        return self.start + self.shape.length


@register_layer("wings")
class Wings(Layer["Wings.Params"]):
    """Wing beats: enveloped air-noise whooshes with a low thump at the stroke's bottom."""

    description = "The beat of great wings: slow whooshing strokes with a soft low thump."
    cue_actions = frozenset({"beat", "beats"})
    ranges = {
        "flap_rate_hz": (0.1, 8.0),
        "jitter": (0.0, 0.5),
        "strength": (0.0, 2.0),
        "brightness_hz": (100.0, 8000.0),
        "thump_hz": (25.0, 150.0),
        "thump_db": (-120.0, 12.0),
    }

    @dataclass(frozen=True)
    class Params:
        flap_rate_hz: float = 1.2
        """Wing beats per second (large real birds: 2.5-5; slower reads as bigger)."""
        jitter: float = 0.08
        """Random spread of each interval, as a fraction of the period."""
        continuous: bool = False
        """Flap all along the track; otherwise only the cues make sound."""
        strength: float = 1.0
        """Overall loudness of the strokes, linear (1 = nominal level)."""
        brightness_hz: float = 700.0
        """Corner above which the whoosh spectrum falls 20 dB per decade, in hertz."""
        thump_hz: float = 60.0
        """Pitch of the low thump at the bottom of each stroke, in hertz."""
        thump_db: float = 0.0
        """Level of the thump relative to its nominal level, in dB (-120 removes it)."""

    # An ordinary stroke is left out where it would overlap a cued one, so
    # the audio up to a time depends on cues up to one stroke later.
    cue_lookahead_s = _MAX_ATTACK_S + _MAX_RELEASE_S + 0.05

    def __init__(self, **kwargs: Any) -> None:
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        p = self.params
        sr = self.sample_rate
        rng = self.rng
        self._period_s = 1.0 / p.flap_rate_hz

        # Two views of one white noise: "dark" with its corner below brightness_hz
        # and "bright" above it; the stroke crossfades from dark to bright and back.
        self._noise_len = int(_NOISE_S * sr)
        longest = int((_MAX_ATTACK_S + _MAX_RELEASE_S) * _BIG_LENGTH * sr) + 1
        white = rng.standard_normal(self._noise_len + longest + _WARMUP, dtype=np.float32)
        hp = signal.butter(4, _WHOOSH_HIGHPASS_HZ, btype="highpass", fs=sr, output="sos")
        white = signal.sosfilt(hp.astype(np.float32), white)
        self._dark = self._shaped_noise(white, _DARK_CORNER * p.brightness_hz)
        self._bright = self._shaped_noise(white, _BRIGHT_CORNER * p.brightness_hz)
        self._noise_peak = float(max(np.max(np.abs(self._dark)), np.max(np.abs(self._bright))))
        # Reading a window backwards is as good a noise and doubles the variety.
        self._dark_rev = self._dark[::-1]
        self._bright_rev = self._bright[::-1]

        self._normal = self._make_shape(self._period_s, pitch=1.0, thump_length=1.0)
        self._big = self._make_shape(
            self._period_s * _BIG_LENGTH, pitch=_BIG_THUMP_PITCH, thump_length=1.6
        )

        # Calibrate: continuous flapping at strength 1 lands on NOMINAL_RMS_DB.
        rho = float(np.mean(self._dark * self._bright, dtype=np.float64))
        sh = self._normal
        whoosh_energy = float(
            np.sum(sh.env_dark.astype(np.float64) ** 2)
            + np.sum(sh.env_bright.astype(np.float64) ** 2)
            + 2 * rho * np.sum(sh.env_dark.astype(np.float64) * sh.env_bright)
        )
        self._thump_level = (
            _THUMP_LEVEL * 10.0 ** (p.thump_db / 20.0) if p.thump_db > -100.0 else 0.0
        )
        thump_energy = float(np.sum(sh.thump.astype(np.float64) ** 2)) * self._thump_level**2
        power = (whoosh_energy + thump_energy) * p.flap_rate_hz / sr
        self._gain = math.sqrt(10.0 ** (NOMINAL_RMS_DB / 10.0) / power) * p.strength

        # Cued strokes draw their small differences from a stream of their
        # own, in cue order: adding a later cue changes nothing before it
        # (the render adds cues as the speech that places them is made).
        self._cue_rng = rng.spawn(1)[0]
        self._events: list[_Flap] = []
        self._next_cue_event = 0
        self._schedule_cues(self.cues)
        self._active: list[_Flap] = []
        # Continuous flaps are scheduled lazily, in time order, from the rng:
        # blocks are always rendered in order, so the schedule cannot depend on chunking.
        self._next_flap = rng.uniform(0.1, 1.0) * self._period_s * sr if p.continuous else math.inf

    def _schedule_cues(self, cues) -> None:
        for cue in cues:
            self._events.extend(self._cue_flaps(cue))
        # A stable sort of the same list a layer made with every cue would
        # have: the strokes already under way (all earlier) keep their places.
        self._events.sort(key=lambda e: e.start)
        self._cue_starts = np.array([e.start for e in self._events], dtype=np.int64)
        self._cue_ends = np.array([e.end for e in self._events], dtype=np.int64)

    def add_cues(self, later) -> bool:
        self._schedule_cues(self._checked_later(later))
        return True

    def _shaped_noise(self, white_hp: np.ndarray, corner_hz: float) -> np.ndarray:
        """One-pole low-pass (20 dB/decade above ``corner_hz``), unit RMS, float32."""
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        sr = self.sample_rate
        b, a = signal.butter(1, min(corner_hz, 0.4 * sr), fs=sr)
        x = signal.lfilter(b.astype(np.float32), a.astype(np.float32), white_hp)[_WARMUP:]
        x *= np.float32(1.0 / np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        # Soften the rare 3-5 sigma peaks so loud strokes stay clear of clipping;
        # below about 1.5 sigma this is transparent.
        x = np.float32(_NOISE_CEILING) * np.tanh(x * np.float32(1.0 / _NOISE_CEILING))
        x *= np.float32(1.0 / np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        return x

    def _make_shape(self, period_s: float, *, pitch: float, thump_length: float) -> _Shape:
        sr = self.sample_rate
        ta = min(_ATTACK_FRACTION * period_s, _MAX_ATTACK_S)
        tr = min(_RELEASE_FRACTION * period_s, _MAX_RELEASE_S)
        na, nr = max(2, int(ta * sr)), max(2, int(tr * sr))
        # Raised-cosine swell, then a squared raised-cosine fade: both start and
        # end with zero slope, so a flap never clicks in or out.
        rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(na) / na)
        u = np.arange(nr) / nr
        fall = (0.5 + 0.5 * np.cos(np.pi * u)) ** 2
        env = np.concatenate([rise, fall])
        bright = _BRIGHT_MIX * env * env
        dark = env * (1.0 - _BRIGHT_MIX * env)

        # Thump: a short sine that glides down into its pitch, like a drum skin
        # settling, with a smooth 8 ms onset and an exponential tail.
        f0 = self.params.thump_hz * pitch
        tau = 0.07 * thump_length
        nt = int(6 * tau * sr)
        t = np.arange(nt) / sr
        freq = f0 * (1.0 + 0.5 * np.exp(-t / 0.03))
        phase = 2 * np.pi * np.cumsum(freq) / sr
        onset = np.minimum(1.0, t / 0.008)
        amp = (0.5 - 0.5 * np.cos(np.pi * onset)) * np.exp(-t / tau)
        fade = np.ones(nt)
        nf = nt // 5
        fade[-nf:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(nf) / nf)
        amp *= fade
        thump = amp * np.sin(phase)
        # A decaying sine has a net area (DC); take it out along its own envelope
        # so a long run of thumps cannot push the mean off zero.
        thump -= amp * (thump.sum() / amp.sum())
        # The thump lands at the bottom of the stroke: just before the whoosh peaks.
        offset = int(0.85 * na)
        length = max(len(env), offset + nt)
        return _Shape(
            env_dark=dark.astype(np.float32),
            env_bright=bright.astype(np.float32),
            thump=thump.astype(np.float32),
            thump_offset=offset,
            length=length,
            thump_peak=float(np.max(np.abs(thump))),
        )

    def _flap(
        self, start: int, shape: _Shape, gain: float, thump_gain: float, rng: np.random.Generator
    ) -> _Flap:
        n = self._noise_len
        return _Flap(
            start=int(start),
            shape=shape,
            # Small random differences between strokes: level and brightness.
            gain=gain * float(rng.uniform(0.92, 1.08)) * (1.0 if rng.random() < 0.5 else -1.0),
            bright=float(rng.uniform(0.7, 1.3)),
            thump_gain=thump_gain * float(rng.uniform(0.9, 1.1)),
            offsets=(int(rng.integers(0, n)), int(rng.integers(0, n))),
            reverse=(bool(rng.random() < 0.5), bool(rng.random() < 0.5)),
        )

    def _cue_strokes(self, cue: Cue) -> list[tuple[int, _Shape, float]]:
        """Validate a cue and list its strokes as (start sample, shape, gain); no randomness."""
        sr = self.sample_rate
        if cue.action not in _CUE_PARAMS:
            raise SoundscapeError(
                f"layer 'wings': no cue {cue.action!r} (known: {', '.join(sorted(_CUE_PARAMS))})"
            )
        extra = set(cue.params) - _CUE_PARAMS[cue.action]
        if extra:
            raise SoundscapeError(
                f"layer 'wings': cue {cue.action!r} has no option {sorted(extra)[0]!r} "
                f"(known: {', '.join(sorted(_CUE_PARAMS[cue.action]))})"
            )
        if not math.isfinite(cue.time_s) or cue.time_s < 0:
            raise SoundscapeError(
                f"layer 'wings': cue time {cue.time_s} must be a time on the track (>= 0 s)"
            )
        strength = _number(cue, "strength", 1.0, 0.0, 2.0)
        start = round(cue.time_s * sr)
        if cue.action == "beat":
            return [(start, self._big, strength)]
        count = int(_number(cue, "count", 6, 1, 64, integer=True))
        interval = _number(cue, "interval_s", self._period_s, 0.1, 20.0)
        stretch = _number(cue, "stretch", _SERIES_STRETCH, 1.0, 3.0)
        strokes = []
        t = float(start)
        for k in range(count):
            strokes.append((round(t), self._normal, strength * _SERIES_DECAY**k))
            t += interval * stretch**k * sr
        return strokes

    def _cue_flaps(self, cue: Cue) -> list[_Flap]:
        flaps = []
        for start, shape, g in self._cue_strokes(cue):
            if shape is self._big:
                flaps.append(
                    self._flap(start, shape, _BIG_GAIN * g, _BIG_THUMP_GAIN * g, self._cue_rng)
                )
            else:
                flaps.append(self._flap(start, shape, g, g, self._cue_rng))
        return flaps

    def cue_duration_s(self, cue: Cue) -> float:
        """How long the cue's strokes go on sounding, in seconds."""
        strokes = self._cue_strokes(cue)
        end = max(start + shape.length for start, shape, _ in strokes)
        return (end - strokes[0][0]) / self.sample_rate

    def _next_block(self) -> np.ndarray:
        b0 = self.block_start
        b1 = b0 + BLOCK_SIZE
        events = self._events
        while self._next_cue_event < len(events) and events[self._next_cue_event].start < b1:
            self._active.append(events[self._next_cue_event])
            self._next_cue_event += 1
        period = self._period_s * self.sample_rate
        jitter = self.params.jitter
        while self._next_flap < b1:
            start = round(self._next_flap)
            end = start + self._normal.length
            # A flap wholly inside a skipped stretch only advances the timing, and
            # the bird does not flap over its own cued strokes: those replace it
            # (hence ``cue_lookahead_s``: a flap looks one stroke ahead).
            if end > b0 and not np.any((self._cue_starts < end) & (self._cue_ends > start)):
                self._active.append(self._flap(start, self._normal, 1.0, 1.0, self.rng))
            self._next_flap += period * (1.0 + jitter * self.rng.uniform(-1.0, 1.0))
        self._active = [e for e in self._active if e.end > b0]
        if not self._active:
            return np.zeros((BLOCK_SIZE, 2), dtype=np.float32)

        out = np.zeros((2, BLOCK_SIZE), dtype=np.float32)
        bound = 0.0
        for e in self._active:
            sh = e.shape
            i0 = max(0, b0 - e.start)
            i1 = min(sh.length, b1 - e.start)
            if i1 <= i0:
                continue
            o0 = e.start + i0 - b0
            g = self._gain * e.gain
            w1 = min(i1, len(sh.env_dark))
            if w1 > i0:
                ed = sh.env_dark[i0:w1] * np.float32(g)
                eb = sh.env_bright[i0:w1] * np.float32(g * e.bright)
                tmp = np.empty_like(ed)
                for ch in range(2):
                    dark, bright = self._noise_slice(e, ch, i0, w1)
                    np.multiply(ed, dark, out=tmp)
                    tmp += eb * bright
                    out[ch, o0 : o0 + (w1 - i0)] += tmp
            t0 = max(i0, sh.thump_offset)
            t1 = min(i1, sh.thump_offset + len(sh.thump))
            thump_gain = self._gain * self._thump_level * e.thump_gain
            if t1 > t0 and thump_gain > 0.0:
                th = sh.thump[t0 - sh.thump_offset : t1 - sh.thump_offset] * np.float32(thump_gain)
                # Low frequencies arrive in phase at both ears: the thump is centred.
                out[:, e.start + t0 - b0 : e.start + t1 - b0] += th
            bound += (
                abs(g) * self._noise_peak * (1.0 + e.bright * _BRIGHT_MIX)
                + thump_gain * sh.thump_peak
            )
        if bound > 1.0:
            # Only overlapping loud strokes can get here; a hard guard keeps the
            # contract ([-1, 1]) without paying for a limiter on every block.
            np.clip(out, -1.0, 1.0, out=out)
        return _interleave(out)

    def _noise_slice(self, e: _Flap, ch: int, i0: int, i1: int) -> tuple[np.ndarray, np.ndarray]:
        sl = slice(e.offsets[ch] + i0, e.offsets[ch] + i1)
        if e.reverse[ch]:
            return self._dark_rev[sl], self._bright_rev[sl]
        return self._dark[sl], self._bright[sl]


def _interleave(out: np.ndarray) -> np.ndarray:
    """(2, n) -> contiguous (n, 2); two strided copies beat a transposing gather."""
    res = np.empty((out.shape[1], 2), dtype=np.float32)
    res[:, 0] = out[0]
    res[:, 1] = out[1]
    return res


def _number(
    cue: Cue, key: str, default: float, low: float, high: float, *, integer: bool = False
) -> float:
    value: Any = cue.params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SoundscapeError(
            f"layer 'wings': cue {cue.action!r}: {key} must be a number, not {value!r}"
        )
    if integer and (not math.isfinite(value) or value != int(value)):
        raise SoundscapeError(
            f"layer 'wings': cue {cue.action!r}: {key} must be a whole number, not {value!r}"
        )
    check_range(f"layer 'wings': cue {cue.action!r}: {key}", value, low, high)
    return float(value)


wings = layer_function("wings", takes_cues=True)
