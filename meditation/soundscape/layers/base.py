"""The contract every soundscape layer follows.

Array convention (the whole package): float32, shape ``(n_samples, 2)``,
range [-1, 1].

A layer is a streaming generator: it renders fixed internal blocks of
``BLOCK_SIZE`` samples, carrying filter and oscillator state from one block to
the next, and ``render(n)`` hands out any number of samples from that stream.
Because the internal blocking never depends on how callers ask for audio, a
render made in chunks of any size is identical to one made in a single call.

Levels: at default parameters a layer's long-term RMS sits near
``NOMINAL_RMS_DB`` dBFS, so a preset's ``level_db`` reads as a plain offset.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np

from ...errors import SoundscapeError
from ...levels import NOMINAL_RMS_DB

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "BLOCK_SIZE",
    "NOMINAL_RMS_DB",
    "Cue",
    "Layer",
    "NoParams",
    "SpanLayer",
    "LAYERS",
    "register_layer",
    "render_layer",
    "check_range",
    "soft_limit",
    "BiquadKind",
    "rbj_biquad",
    "impulse_response",
    "noise_gain",
    "held_tilt",
]

BLOCK_SIZE = 8192

P = TypeVar("P", bound="DataclassInstance")
"""A layer's ``Params`` dataclass: ``class River(SpanLayer["River.Params"])`` types ``self.params``."""

L = TypeVar("L", bound="type[Layer[Any]]")

LAYERS: dict[str, type[Layer[Any]]] = {}


@dataclass(frozen=True)
class Cue:
    """A one-off event a layer plays at a moment on the track."""

    time_s: float
    """When the event starts, in seconds from the start of the track."""
    action: str
    """What to play, e.g. ``"strike"`` for the bell, ``"beat"`` or ``"beats"`` for the wings."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Action-specific options (e.g. ``{"count": 6}`` for a series of wing beats)."""


def register_layer(name: str) -> Callable[[L], L]:
    """Class decorator: make a layer available to presets under ``name``."""

    def decorate(cls: L) -> L:
        if name in LAYERS:
            raise ValueError(f"layer {name!r} is registered twice")
        cls.name = name
        LAYERS[name] = cls
        return cls

    return decorate


@dataclass(frozen=True)
class NoParams:
    """No parameters (``class Hum(Layer[NoParams])`` with ``Params = NoParams``)."""


class Layer(abc.ABC, Generic[P]):
    """A seeded, streaming stereo generator.

    Subclasses define ``Params`` (a frozen dataclass with a docstring per
    field, units in the names) and name it as the type argument, so
    ``self.params`` is typed: ``class River(SpanLayer["River.Params"])``
    (a string, since the nested class does not exist yet where the bases
    are read). They give the allowed ``ranges`` of its numbers,
    ``description`` (one line), the cue actions they accept in
    ``cue_actions``, and ``_next_block`` (or, via ``SpanLayer``,
    ``_render_span``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    cue_actions: ClassVar[frozenset[str]] = frozenset()
    ranges: ClassVar[Mapping[str, tuple[float, float]]] = {}
    """Allowed (low, high) of each numeric parameter, checked by ``check_params``."""
    cue_lookahead_s: ClassVar[float] = 0.0
    """The layer's audio up to any time depends only on its cues that start before that time plus this.

    A render gives a layer its cues as the speech that places them is made
    (``Ambience.adopt``): a layer that looks further ahead must say so here.
    ``tests/test_layer_base.py`` checks it for every layer that takes cues.
    """

    Params: type[P]
    """The parameters' frozen dataclass; ``make_params`` builds it from a preset's values."""

    def __init__(
        self,
        *,
        sample_rate: int,
        rng: np.random.Generator,
        params: Mapping[str, Any] | None = None,
        cues: Sequence[Cue] = (),
    ):
        check_range("sample_rate", sample_rate, 8000, 192000)
        self.sample_rate = int(sample_rate)
        self.rng = rng
        self.params: P = self.make_params(params or {})
        for cue in cues:
            if cue.action not in self.cue_actions:
                known = ", ".join(sorted(self.cue_actions)) or "none"
                raise SoundscapeError(
                    f"layer {self.name!r} has no cue {cue.action!r} (known: {known})"
                )
        self.cues: tuple[Cue, ...] = tuple(sorted(cues, key=lambda c: c.time_s))
        self._block_index = 0
        self._pending = np.zeros((0, 2), dtype=np.float32)

    @classmethod
    def make_params(cls, values: Mapping[str, Any]) -> P:
        """Validate user-given parameter values into this layer's ``Params``."""
        known = {f.name: f for f in dataclasses.fields(cls.Params)}
        for key in values:
            if key not in known:
                names = ", ".join(known) or "none"
                raise SoundscapeError(
                    f"layer {cls.name!r} has no parameter {key!r} (known: {names})"
                )
        converted: dict[str, Any] = {}
        for key, value in values.items():
            default = getattr(cls.Params(), key)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise SoundscapeError(
                        f"layer {cls.name!r}: {key} must be true or false, not {value!r}"
                    )
            elif isinstance(default, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise SoundscapeError(
                        f"layer {cls.name!r}: {key} must be a number, not {value!r}"
                    )
                value = type(default)(value) if isinstance(default, float) else value
            converted[key] = value
        params = cls.Params(**converted)
        cls.check_params(params)
        return params

    @classmethod
    def check_params(cls, params: P) -> None:
        """Raise SoundscapeError when a parameter value is out of range (see ``ranges``)."""
        for key, (low, high) in cls.ranges.items():
            check_range(f"layer {cls.name!r}: {key}", getattr(params, key), low, high)

    @property
    def block_start(self) -> int:
        """Absolute index of the first sample of the block being rendered."""
        return self._block_index * BLOCK_SIZE

    def render(self, n_samples: int) -> np.ndarray:
        """Return the next ``n_samples`` of the stream, shape ``(n_samples, 2)``."""
        parts = [self._pending]
        have = len(self._pending)
        while have < n_samples:
            block = self._next_block()
            self._block_index += 1
            parts.append(block)
            have += len(block)
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._pending = out[n_samples:]
        return np.ascontiguousarray(out[:n_samples], dtype=np.float32)

    def skip(self, n_samples: int) -> None:
        """Advance the stream by ``n_samples`` without rendering whole blocks.

        The mixer calls this where the layer is silent anyway, so a layer that
        plays in one scene costs nothing in the others. Skipped blocks leave
        filter state where it was; the fade back in hides the seam.
        """
        take = min(n_samples, len(self._pending))
        self._pending = self._pending[take:]
        n_samples -= take
        whole, rest = divmod(n_samples, BLOCK_SIZE)
        self._block_index += whole
        if rest:
            self._pending = self.render(BLOCK_SIZE)[rest:]

    def cue_duration_s(self, cue: Cue) -> float:
        """How long a cue goes on sounding (for the timeline's list of what sounds where)."""
        return 2.0

    def add_cues(self, later: Sequence[Cue]) -> bool:
        """Take more cues, all later than every cue the layer has (and than what it has rendered, plus its lookahead).

        A render learns its cues as the speech that places them is made.
        Afterwards the layer must sound as one made with all the cues from
        the start would (``tests/test_layer_base.py``). Returns False where
        a layer cannot, and must be made again (the default).
        """
        return False

    def _checked_later(self, later: Sequence[Cue]) -> tuple[Cue, ...]:
        """``later`` validated like the constructor's cues, and sorted; ``self.cues`` extended with them."""
        for cue in later:
            if cue.action not in self.cue_actions:
                known = ", ".join(sorted(self.cue_actions)) or "none"
                raise SoundscapeError(
                    f"layer {self.name!r} has no cue {cue.action!r} (known: {known})"
                )
        later = tuple(sorted(later, key=lambda c: c.time_s))
        if later and self.cues and later[0].time_s < self.cues[-1].time_s:
            raise ValueError("add_cues takes only cues later than the layer's own")
        self.cues = self.cues + later
        return later

    @abc.abstractmethod
    def _next_block(self) -> np.ndarray:
        """Render block number ``self._block_index``: float32, ``(BLOCK_SIZE, 2)``."""


class SpanLayer(Layer[P]):
    """A layer that renders ``span_blocks`` blocks at a time.

    Per-call overhead of numpy and scipy is a large share of the cost at
    ``BLOCK_SIZE``, so filtered-noise layers make a few blocks per call. A
    span always starts on a block whose index is a multiple of
    ``span_blocks``, so chunking cannot matter; after ``Layer.skip`` the
    stream lands in some span and the carried state simply continues there.
    """

    span_blocks: ClassVar[int] = 4

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._span_audio = np.zeros((0, 2), dtype=np.float32)
        self._span_number = -1

    @property
    def span_size(self) -> int:
        """Samples per span."""
        return self.span_blocks * BLOCK_SIZE

    def render(self, n_samples: int) -> np.ndarray:
        """As ``Layer.render``; whole spans asked for on their grid are handed out as made.

        The span is the layer's to give away (it never reads it again), so
        a chunk of whole spans costs no copy and no per-block slicing.
        """
        if len(self._pending) or self._block_index % self.span_blocks or n_samples < self.span_size:
            return super().render(n_samples)
        spans: list[np.ndarray] = []
        while n_samples - len(spans) * self.span_size >= self.span_size:
            self._span_number = self._block_index // self.span_blocks
            spans.append(self._render_span(self._span_number * self.span_size))
            self._block_index += self.span_blocks
        rest = n_samples - len(spans) * self.span_size
        if rest:
            spans.append(super().render(rest))
        out = np.concatenate(spans) if len(spans) > 1 else spans[0]
        return np.ascontiguousarray(out, dtype=np.float32)

    def _next_block(self) -> np.ndarray:
        span, part = divmod(self._block_index, self.span_blocks)
        if span != self._span_number:
            self._span_audio = self._render_span(span * self.span_size)
            self._span_number = span
        return self._span_audio[part * BLOCK_SIZE : (part + 1) * BLOCK_SIZE]

    @abc.abstractmethod
    def _render_span(self, start: int) -> np.ndarray:
        """Render the span that starts at absolute sample ``start``: float32, ``(span_size, 2)``."""


class BiquadKind(str, enum.Enum):
    """Which side of its cutoff an RBJ biquad passes."""

    LOW = "low"
    HIGH = "high"


def rbj_biquad(kind: BiquadKind | str, cutoff_hz: float, q: float, fs: float) -> np.ndarray:
    """Second-order low- or high-pass (RBJ cookbook) as one SOS row ``[b0, b1, b2, 1, a1, a2]``, shape (1, 6).

    Cascade sections with ``np.vstack`` and run them with
    ``scipy.signal.sosfilt``: a product of biquads expanded into one
    high-order polynomial loses its poles in float32, sections do not.
    """
    kind = BiquadKind(kind)
    w0 = 2 * math.pi * cutoff_hz / fs
    alpha = math.sin(w0) / (2 * q)
    c = math.cos(w0)
    if kind is BiquadKind.LOW:
        b = np.array([(1 - c) / 2, 1 - c, (1 - c) / 2])
    else:
        b = np.array([(1 + c) / 2, -(1 + c), (1 + c) / 2])
    a = np.array([1 + alpha, -2 * c, 1 - alpha])
    return np.concatenate([b, a])[None, :] / a[0]


def impulse_response(sos: np.ndarray, *, energy_left: float = 1e-12) -> np.ndarray:
    """Impulse response (float64) of a stable SOS filter, cut where under ``energy_left`` of its energy remains."""
    from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

    sos = np.asarray(sos, dtype=np.float64)
    radius = max(float(np.max(np.abs(np.roots(section[3:])), initial=0.0)) for section in sos)
    if not radius < 1.0:
        raise ValueError(f"filter is not stable (pole radius {radius:g})")
    # A pole of radius r leaves r^(2n) of the energy after n samples;
    # repeated poles (cascades) decay a little slower, hence the margin.
    n = 64 + 2 * len(sos) * int(
        math.ceil(math.log(energy_left) / (2 * math.log(max(radius, 1e-3))))
    )
    impulse = np.zeros(min(n, 1 << 24))
    impulse[0] = 1.0
    return signal.sosfilt(sos, impulse)


def noise_gain(sos: np.ndarray) -> float:
    """RMS out of a filter for unit-variance white noise in: the square root of its impulse response energy."""
    h = impulse_response(sos)
    return math.sqrt(float(np.dot(h, h)))


def held_tilt(
    y: np.ndarray, g_now: np.ndarray, g_prev: np.ndarray, hop: int, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``out[n] = g_now[k] * y[n] - g_prev[k] * y[n-1]`` per channel, gains held for ``hop`` samples.

    The spectral tilt of the river's and wind's noise beds: a first
    difference mixed in by a gain that moves with the control signals.
    ``y`` is channel-first float32 ``(2, n)`` (as ``sosfilt`` makes it
    without a transposing copy), gains are ``(n // hop, 2)``, ``last`` the
    previous span's final ``y`` samples. Returns the ``(n, 2)`` output and
    this span's final samples.
    """
    n = y.shape[1]
    out = np.empty((n, 2), dtype=np.float32)
    for c in range(y.shape[0]):
        # np.repeat then flat 1-D passes: several times faster than
        # broadcasting over a length-2 channel axis.
        oc = y[c] * np.repeat(g_now[:, c], hop)
        before = np.repeat(g_prev[:, c], hop)
        before[1:] *= y[c, :-1]
        before[0] *= last[c]
        oc -= before
        out[:, c] = oc
    return out, y[:, -1].copy()


def check_range(what: str, value: float, low: float, high: float) -> None:
    """Raise SoundscapeError unless ``low <= value <= high``.

    Worded as the settings' range errors are (``flow 1.5 is out of range (0 to 1)``).
    """
    if not low <= value <= high:  # NaN is refused too
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        raise SoundscapeError(f"{what} {shown} is out of range ({low:g} to {high:g})")


_KNEE = 0.7


def soft_limit(out: np.ndarray) -> None:
    """Keep ``out`` inside (-1, 1) in place, bending only the rare peaks above 0.7.

    A tanh knee instead of a hard clip: the few samples it touches (where
    loud events pile up) are rounded off rather than flattened, and the
    mask costs about as much as np.clip.
    """
    over = np.flatnonzero(np.abs(out) > _KNEE)
    if over.size:
        flat = out.reshape(-1)
        v = flat[over]
        flat[over] = np.sign(v) * (
            _KNEE + (1.0 - _KNEE) * np.tanh((np.abs(v) - _KNEE) / (1.0 - _KNEE))
        )


def render_layer(
    name: str,
    n_samples: int,
    *,
    sample_rate: int,
    rng: np.random.Generator,
    params: Mapping[str, Any] | None = None,
    cues: Sequence[Cue] = (),
) -> np.ndarray:
    """Render ``n_samples`` of layer ``name`` in one call (pure-function form)."""
    try:
        cls = LAYERS[name]
    except KeyError:
        raise SoundscapeError(
            f"unknown layer {name!r} (known: {', '.join(sorted(LAYERS))})"
        ) from None
    return cls(sample_rate=sample_rate, rng=rng, params=params, cues=cues).render(n_samples)
