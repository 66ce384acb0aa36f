"""A singing-bowl strike.

Perceptual model: a struck bowl is heard as a clear but inharmonic chord of a
few partials (near 1, 2.7, 5.1, 8.2, 11.9 and 16 times the fundamental) that
die away exponentially, the fundamental slowest (its T60 is ``decay_s``) and
each higher partial faster, so the sound darkens as it fades.  Its "singing"
wobble comes from the bowl not being perfectly round: each partial is a pair
of modes a fraction of a hertz apart, and the pair beats.  Where a listener
(or a microphone) stands around the bowl decides how the two modes of a pair
mix, so the wobble is out of step between the two ears -- which is also what
makes the stereo image wide.  A soft mallet gives a rounded onset of a few
milliseconds and, when struck harder, a little more of the upper partials.

Implementation: one stereo grain per distinct strike strength (quantised),
computed once; each strike adds the slice of its grain that overlaps a block.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...errors import SoundscapeError
from .base import BLOCK_SIZE, Cue, Layer, check_range, register_layer
from .dsp import layer_function

__all__ = ["Bell", "Bowl", "TempleBell", "bell", "bowl", "temple_bell"]

# Partial ratios of a typical singing bowl, and their levels at brightness 0.5
# before the brightness tilt.
_RATIOS = np.array([1.0, 2.71, 5.12, 8.21, 11.9, 16.1])
_BASE_AMPS = np.array([1.0, 0.8, 0.5, 0.35, 0.2, 0.12])
# Higher partials ring shorter: T60_k = decay_s * ratio_k ** -_DECAY_EXPONENT.
_DECAY_EXPONENT = 0.75
# The n-th partial of a bowl is its (n+2)-lobed mode around the rim.
_MODE_ORDER = np.arange(len(_RATIOS)) + 2
# Listener's ears (or a mic pair) sit this far either side of the strike point,
# in radians around the rim: enough to put the wobble out of step L vs R.
_EAR_ANGLE = 0.25
# Grain ends at this many T60s of the fundamental: 1.5 x T60 = -90 dB.
_TAIL_T60S = 1.5
# Peak of a strength-1 strike, in linear full scale (-6 dBFS).
_STRIKE_PEAK = 0.5
_MAX_FRACTION_OF_SR = 0.45
_STRENGTH_STEP = 0.1  # grains are built per 0.1 of strength (timbre only)


@register_layer("bell")
class Bell(Layer["Bell.Params"]):
    """Singing-bowl strikes at cue times: beating inharmonic partials with long decays."""

    description = "A singing bowl struck on cue: long, beating, inharmonic partials."
    RATIOS: ClassVar[np.ndarray] = _RATIOS
    """Partial frequencies relative to ``fundamental_hz``."""
    BASE_AMPS: ClassVar[np.ndarray] = _BASE_AMPS
    DECAY_EXPONENT: ClassVar[float] = _DECAY_EXPONENT
    MODE_ORDER: ClassVar[np.ndarray] = _MODE_ORDER
    cue_actions = frozenset({"strike"})
    ranges = {
        "fundamental_hz": (40.0, 2000.0),
        "decay_s": (0.5, 30.0),
        "brightness": (0.0, 1.0),
        "wobble_hz": (0.0, 5.0),
        "mallet_ms": (0.5, 50.0),
    }

    @dataclass(frozen=True)
    class Params:
        fundamental_hz: float = 220.0
        """Pitch of the lowest partial, in hertz."""
        decay_s: float = 12.0
        """Time for the fundamental to fall by 60 dB, in seconds (higher partials are shorter)."""
        brightness: float = 0.5
        """Level of the upper partials, from 0 (nearly pure fundamental) to 1 (bright, metallic)."""
        wobble_hz: float = 0.7
        """Beat rate of the fundamental's mode pair, in hertz (0 = a perfectly round bowl)."""
        mallet_ms: float = 4.0
        """Onset time of the strike, in milliseconds (soft mallets are slower)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        p = self.params
        sr = self.sample_rate
        rng = self.rng
        n_modes = len(self.RATIOS)

        tilt = -0.8 * (1.0 - p.brightness)
        self._amps = self.BASE_AMPS * self.RATIOS**tilt
        self._t60 = p.decay_s * self.RATIOS**-self.DECAY_EXPONENT
        # Each partial's mode pair: split grows with the partial, with some scatter,
        # since real bowls are irregular.
        split = p.wobble_hz * np.sqrt(self.RATIOS) * rng.uniform(0.8, 1.25, n_modes)
        centre = p.fundamental_hz * self.RATIOS * (1.0 + rng.uniform(-0.004, 0.004, n_modes))
        centre[0] = p.fundamental_hz * self.RATIOS[0]
        self._freqs = np.stack([centre - split / 2, centre + split / 2], axis=1)  # (mode, pair)
        audible = self._freqs[:, 1] < _MAX_FRACTION_OF_SR * sr
        self._amps = np.where(audible, self._amps, 0.0)

        # How the strike shares its energy between the two modes of each pair
        # (mu), and how each ear weighs them (angle around the rim).  mu is kept
        # away from 0 and pi/2 so every pair actually beats.
        mu = rng.uniform(0.4, 1.17, n_modes)
        weights = np.empty((2, n_modes, 2))  # (ear, mode, pair member)
        for ear, angle in enumerate((-_EAR_ANGLE, _EAR_ANGLE)):
            seen = mu + self.MODE_ORDER * angle
            weights[ear, :, 0] = np.cos(mu) * np.cos(seen)
            weights[ear, :, 1] = np.sin(mu) * np.sin(seen)
        self._weights = weights

        self._grains: dict[int, np.ndarray] = {}
        self._scale: float | None = None  # set by the strength-1 grain: its peak is _STRIKE_PEAK
        # Every grain has this length; grains themselves are built when a
        # strike is first heard (a probe asked only for cue_duration_s, or a
        # track that ends before its strike, never pays for them).
        self._grain_length = int(math.ceil(_TAIL_T60S * p.decay_s * sr))
        self._strikes = sorted(
            ((round(cue.time_s * sr), _strength(cue, self.name)) for cue in self.cues),
            key=lambda s: s[0],
        )
        self._first_live = 0

    def _grain(self, strength: float) -> np.ndarray:
        """The stereo sound of one strike at unit amplitude scaling; cached by timbre step."""
        key = int(round(strength / _STRENGTH_STEP))
        if key not in self._grains:
            if self._scale is None:
                raw = self._build(1.0)
                self._scale = _STRIKE_PEAK / float(np.max(np.abs(raw)))
                self._grains[int(round(1.0 / _STRENGTH_STEP))] = raw * np.float32(self._scale)
            if key not in self._grains:
                self._grains[key] = self._build(max(key * _STRENGTH_STEP, 0.05)) * np.float32(
                    self._scale
                )
        return self._grains[key]

    def _build(self, timbre_strength: float) -> np.ndarray:
        """Sum the partials of a strike whose timbre matches ``timbre_strength`` (peak ~1 at 1).

        Each mode is a damped sine, the imaginary part of ``z ** n``; with
        ``n = B * m + i`` that is ``z ** (B * m) * z ** i``, so both ears'
        sums over all modes come out of one small matrix product
        ``(rows of blocks x modes) @ (modes x B)``, about ten times cheaper
        than a sine and an exponential per mode and sample. Every partial
        rings on under the fundamental, already more than 90 dB down where
        the grain ends (the higher ones far more).
        """
        p = self.params
        sr = self.sample_rate
        n_total = self._grain_length
        # A harder strike excites the upper partials more than the lower ones.
        hardness = timbre_strength ** (0.5 * np.arange(len(self.RATIOS)))
        amps = np.repeat(self._amps * hardness, 2)  # per mode: (partial, pair member) flattened
        cycles = self._freqs.reshape(-1) / sr  # cycles per sample
        decay = np.repeat(math.log(1000.0) / (self._t60 * sr), 2)  # nepers per sample
        coef = self._weights.reshape(2, -1) * amps  # (ear, mode)

        def powers(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Real and imaginary parts of z ** n, (len(n), modes); phase reduced in float64."""
            cyc = np.multiply.outer(n, cycles)
            cyc -= np.floor(cyc)
            mag = np.exp(-np.multiply.outer(n, decay))
            mag[mag < 1e-12] = 0.0  # far below hearing: keeps float32 out of denormals
            angle = 2 * np.pi * cyc
            return mag * np.cos(angle), mag * np.sin(angle)

        step = 2048
        rows = -(-n_total // step)
        head_re, head_im = powers(np.arange(rows, dtype=np.float64) * step)
        tail_re, tail_im = powers(np.arange(step, dtype=np.float64))
        # Im(a * b) = Re(a) Im(b) + Im(a) Re(b), summed over the modes.
        left = np.concatenate(
            [np.hstack([head_re * coef[ear], head_im * coef[ear]]) for ear in range(2)]
        ).astype(np.float32)
        right = np.vstack([tail_im.T, tail_re.T]).astype(np.float32)
        # numpy's own loops, not BLAS: a threaded GEMM rounds by how it splits the work, so the
        # same strike came out a bit apart in a batch worker (BLAS held to one thread) and in
        # the CLI. Same bits everywhere, and as fast here.
        ears = np.einsum("ij,jk->ik", left, right, optimize=False)
        ears = ears.reshape(2, rows * step)[:, :n_total]
        # Soft mallet: a raised-cosine onset, so the strike has no click.
        n_attack = min(max(2, int(p.mallet_ms * 1e-3 * sr)), n_total)
        ears[:, :n_attack] *= (0.5 - 0.5 * np.cos(np.pi * np.arange(n_attack) / n_attack)).astype(
            np.float32
        )
        # At -90 dB the fundamental is gone; a short fade makes the grain end exact zero.
        nf = max(2, n_total // 20)
        ears[:, -nf:] *= (0.5 + 0.5 * np.cos(np.pi * np.arange(nf) / nf)).astype(np.float32)
        return np.ascontiguousarray(ears.T)

    def add_cues(self, later: Sequence[Cue]) -> bool:
        sr = self.sample_rate
        # Later strikes sort after the ones before: the live index stays where it is.
        self._strikes = self._strikes + [
            (round(cue.time_s * sr), _strength(cue, self.name))
            for cue in self._checked_later(later)
        ]
        return True

    def cue_duration_s(self, cue: Cue) -> float:
        """How long a strike is heard: until the fundamental has fallen 60 dB."""
        _strength(cue, self.name)
        return self.params.decay_s

    def _next_block(self) -> np.ndarray:
        b0 = self.block_start
        b1 = b0 + BLOCK_SIZE
        # Every grain of one bowl has the same length, so strikes also end in
        # order: those that ended before this block never need looking at again.
        strikes = self._strikes
        length = self._grain_length
        while self._first_live < len(strikes):
            start, _ = strikes[self._first_live]
            if start + length > b0:
                break
            self._first_live += 1
        out = None
        bound = 0.0
        for start, strength in strikes[self._first_live :]:
            if start >= b1:
                break  # sorted by start
            if start + length <= b0 or strength <= 0.0:
                continue
            grain = self._grain(strength)
            i0 = max(0, b0 - start)
            i1 = min(length, b1 - start)
            if out is None:
                out = np.zeros((BLOCK_SIZE, 2), dtype=np.float32)
            o0 = start + i0 - b0
            out[o0 : o0 + (i1 - i0)] += np.float32(strength) * grain[i0:i1]
            bound += strength * _STRIKE_PEAK * 1.2
        if out is None:
            return np.zeros((BLOCK_SIZE, 2), dtype=np.float32)
        if bound > 1.0:
            # Only a pile-up of strikes can get here; keep the [-1, 1] contract.
            np.clip(out, -1.0, 1.0, out=out)
        return out


def _strength(cue: Cue, name: str = "bell") -> float:
    extra = set(cue.params) - {"strength"}
    if extra:
        raise SoundscapeError(
            f"layer {name!r}: cue {cue.action!r} has no option {sorted(extra)[0]!r} (known: strength)"
        )
    if not math.isfinite(cue.time_s) or cue.time_s < 0:
        raise SoundscapeError(
            f"layer {name!r}: cue time {cue.time_s} must be a time on the track (>= 0 s)"
        )
    value: Any = cue.params.get("strength", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SoundscapeError(
            f"layer {name!r}: cue {cue.action!r}: strength must be a number, not {value!r}"
        )
    check_range(f"layer {name!r}: cue {cue.action!r}: strength", value, 0.0, 1.0)
    return float(value)


bell = layer_function("bell", takes_cues=True)


class _Tolling(Bell):
    """A bell that, besides its cues, is struck on its own every ``interval_s`` (give or take a fifth)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Its own generator: the strikes do not depend on how the bell's was used.
        self._toll_rng = np.random.default_rng(int(self.rng.integers(2**63)))
        # Both subclasses' Params add interval_s to the bell's.
        interval: float = self.params.interval_s  # type: ignore[attr-defined]
        self._interval_s = interval
        self._next_toll = float(self._toll_rng.uniform(0.05, 0.5)) * interval if interval else None

    def _next_block(self) -> np.ndarray:
        if self._next_toll is not None:
            sr = self.sample_rate
            end = self.block_start + BLOCK_SIZE
            while self._next_toll * sr < end:
                # Full strength: each distinct strength costs a grain of
                # decay_s * 1.5 seconds, too dear to vary per strike.
                bisect.insort(self._strikes, (round(self._next_toll * sr), 1.0))
                self._next_toll += self._interval_s * float(self._toll_rng.uniform(0.8, 1.2))
        return super()._next_block()


@register_layer("bowl")
class Bowl(_Tolling):
    """A singing bowl struck again and again: beating mode pairs that sing between strikes."""

    description = "A singing bowl struck every few seconds, its partials beating as they ring."
    ranges = {"interval_s": (0.0, 600.0), **Bell.ranges}

    @dataclass(frozen=True)
    class Params(Bell.Params):
        """Bowl parameters (the bell's, with a bowl that sings and beats)."""

        interval_s: float = 9.0
        """Seconds between strikes of its own (0: only on cue)."""
        wobble_hz: float = 2.5
        decay_s: float = 30.0
        fundamental_hz: float = 196.0


@register_layer("temple-bell")
class TempleBell(_Tolling):
    """A large temple bell heard from afar: deep inharmonic partials and a long hum."""

    description = "A distant temple bell: a deep strike with a long, slowly beating hum."
    # A large bell's partials (hum, prime, tierce, quint, nominal and above):
    # inharmonic, with the hum an octave under the strike note.
    RATIOS = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.52, 3.0, 4.1])
    BASE_AMPS = np.array([0.7, 1.0, 0.6, 0.35, 0.7, 0.3, 0.2, 0.12])
    DECAY_EXPONENT = 0.9
    MODE_ORDER = np.arange(8) + 2
    ranges = {"interval_s": (0.0, 600.0), **Bell.ranges}

    @dataclass(frozen=True)
    class Params(Bell.Params):
        """Temple-bell parameters (the bell's, with a big distant bell's)."""

        interval_s: float = 0.0
        """Seconds between strikes of its own (0: only on cue)."""
        fundamental_hz: float = 130.0
        decay_s: float = 25.0
        brightness: float = 0.25
        wobble_hz: float = 0.3
        mallet_ms: float = 12.0


bowl = layer_function("bowl", takes_cues=True)
temple_bell = layer_function("temple-bell", takes_cues=True)
