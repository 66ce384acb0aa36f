"""Streaming a planned soundscape: every layer of an ``AmbiencePlan``, its level envelope applied.

``AmbienceStream(plan)`` is a fresh, seeded renderer; two streams of one
plan render identical audio (the master stage streams the mix more than
once). While speech is still being synthesized, the stream ``adopt``s newer
plans of the same track.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from .layers import BLOCK_SIZE, Cue, Layer
from .plan import AmbiencePlan

__all__ = ["AmbienceStream"]


class AmbienceStream:
    """Streams every layer of a plan with its level envelope applied.

    ``until``: the plan is final only before that sample (the timeline is
    still growing, see ``adopt``); cues at or after it are held back.
    """

    def __init__(self, plan: AmbiencePlan, until: int | None = None):
        self._position = 0
        # A layer is made when it first sounds: most presets have layers
        # that play in a few scenes only, or (a track without a script) in
        # none, and making one can cost more than a minute of its audio.
        # Each layer's generator starts from its own seed whenever it is
        # made, and the silent stretch before is handed to ``skip`` as it
        # would have been, so making it late changes no sample.
        self._layers: dict[str, Layer | None] = {}
        self._cues: dict[str, tuple[Cue, ...]] = {}  # the cues each layer was made with
        # (rendered?, samples): what each layer was asked, for a remake; kept only while the plan can still change.
        self._calls: dict[str, list[tuple[bool, int]]] | None = {} if until is not None else None
        # Samples of silent layer blocks not yet skipped (see ``render``).
        self._deferred: dict[str, int] = {}
        self.adopt(plan, until)

    def adopt(self, plan: AmbiencePlan, until: int | None = None) -> None:
        """Go on with a newer plan of the same track, final before sample ``until`` (None: final).

        While speech is still being synthesized the plan is made again as
        the timeline grows; each new one agrees with the last before the
        last one's ``until``, which this stream never passed. A layer is
        given the cues before ``until`` and its ``cue_lookahead_s``; the
        plan's later ones are held back (their times are lower bounds: the
        caller makes sure those within the lookahead are final). A layer
        whose cues change is made again and given the same calls, which
        brings it to where it was: a layer's audio before a cue does not
        depend on the cue (``tests/test_layer_base.py`` checks every layer
        for it).
        """
        sr = plan.timeline.sample_rate
        if until is not None and self._position > until:
            raise ValueError(
                f"a plan final before sample {until} came after sample {self._position} was rendered"
            )
        self.plan = plan
        self.names = tuple(plan.preset.layers)
        layers, self._active = {}, {}
        for name in self.names:  # in the plan's order: the mix sums the layers in it
            ahead = plan.preset.layers[name].cls.cue_lookahead_s
            cues = tuple(
                c
                for c in plan.cues.get(name, ())
                if until is None or c.time_s * sr < until + ahead * sr
            )
            layer = self._layers.get(name)
            self._deferred.setdefault(
                name, self._position
            )  # a layer new to the plan was silent so far
            if cues and (layer is None or cues != self._cues[name]):
                had = self._cues.get(name, ())
                if (
                    layer is not None
                    and cues[: len(had)] == had
                    and layer.add_cues(cues[len(had) :])
                ):
                    self._cues[name] = cues  # later cues, taken as they are
                else:
                    # Cue lengths come from the layer itself (and making it checks the cues).
                    layer = self._remade(name, cues)
            layers[name] = layer
            durations: list[float] = []
            if cues:
                assert layer is not None  # a layer given cues was made just above
                durations = [layer.cue_duration_s(c) for c in cues]
            self._active[name] = _merged(_active_ranges(plan, name, durations, cues))
        self._layers = layers
        if until is None:
            self._calls = None  # final: no layer will be made again

    def _remade(self, name: str, cues: tuple[Cue, ...]) -> Layer:
        layer = self._make(name, cues)
        self._cues[name] = cues
        if self._calls is None:
            if self._layers.get(name) is not None:
                raise RuntimeError(
                    f"layer {name!r} cannot be made again: its calls were not kept (the plan was final)"
                )
            return layer
        for rendered, n in self._calls.setdefault(name, []):
            if rendered:
                layer.render(n)
            else:
                layer.skip(n)
        return layer

    def _make(self, name: str, cues: tuple[Cue, ...]) -> Layer:
        plan = self.plan
        # One child seed per layer, by the layer's name: adding a layer to a
        # preset never shifts the randomness of the others.
        entropy = [plan.seed, *name.encode("utf-8")]
        rng = np.random.default_rng(np.random.SeedSequence(entropy))
        spec = plan.preset.layers[name]
        return spec.cls(
            sample_rate=plan.timeline.sample_rate, rng=rng, params=spec.params, cues=cues
        )

    def render(self, n_samples: int) -> dict[str, np.ndarray]:
        """The next ``n_samples`` of every layer that sounds here, level envelope applied.

        Layers silent for the whole stretch are left out of the result (the
        caller treats a missing layer as silence). Whether a layer is
        rendered or skipped is decided per whole layer block (``BLOCK_SIZE``
        samples on a grid from sample 0), never per call, and a skip is
        handed to the layer only once the silent blocks are over, in whole
        blocks. Skipping leaves a layer's filters and random stream where
        they were, so deciding per call would make the audio depend on how
        the caller chunks the stream; on the grid, any chunk sizes give the
        same audio.
        """
        start, end = self._position, self._position + n_samples
        out = {}
        for name, layer in self._layers.items():
            pieces = []
            pos = start
            while pos < end:
                # A run of blocks that are all loud or all silent.
                loud = self._block_is_loud(name, pos // BLOCK_SIZE)
                run_end = (pos // BLOCK_SIZE + 1) * BLOCK_SIZE
                while run_end < end and self._block_is_loud(name, run_end // BLOCK_SIZE) == loud:
                    run_end += BLOCK_SIZE
                run_end = min(run_end, end)
                if loud:
                    calls = self._calls.setdefault(name, []) if self._calls is not None else None
                    if layer is None:
                        layer = self._layers[name] = self._make(name, ())
                        self._cues[name] = ()
                    if self._deferred[name]:
                        layer.skip(self._deferred[name])  # whole blocks: nothing rendered
                        if calls is not None:
                            calls.append((False, self._deferred[name]))
                        self._deferred[name] = 0
                    pieces.append((pos - start, layer.render(run_end - pos)))
                    if calls is not None:
                        calls.append((True, run_end - pos))
                else:
                    self._deferred[name] += run_end - pos  # silent here: don't spend time on it
                pos = run_end
            if not pieces:
                continue
            if len(pieces) == 1 and pieces[0][0] == 0 and len(pieces[0][1]) == n_samples:
                buf = pieces[0][1]
            else:
                buf = np.zeros((n_samples, 2), dtype=np.float32)
                for offset, audio in pieces:
                    buf[offset : offset + len(audio)] = audio
            gain = _gain(self.plan.envelopes[name], start, end)
            if isinstance(gain, float):
                buf *= np.float32(gain)
            else:
                buf *= gain[:, None]
            out[name] = buf
        self._position = end
        return out

    def _block_is_loud(self, name: str, block: int) -> bool:
        starts, ends = self._active[name]
        # The first range that ends after the block starts is the only one
        # that can overlap it (the ranges are disjoint and sorted).
        i = bisect.bisect_right(ends, block * BLOCK_SIZE)
        return i < len(ends) and starts[i] < (block + 1) * BLOCK_SIZE


def _gain(envelope: tuple[np.ndarray, np.ndarray], start: int, end: int) -> float | np.ndarray:
    """A layer's linear gain over samples [start, end): one number where the envelope is flat there."""
    xs, ys = envelope
    first, last = np.searchsorted(xs, [start, end - 1], side="right")
    if first == last and (first == 0 or first == len(xs) or ys[first - 1] == ys[first]):
        return float(ys[min(max(first - 1, 0), len(ys) - 1)])
    return np.interp(np.arange(start, end, dtype=np.float64), xs, ys).astype(np.float32)


def _active_ranges(
    plan: AmbiencePlan, name: str, cue_durations_s: Sequence[float], cues: Sequence[Cue]
) -> list[tuple[int, int]]:
    """Sample ranges where a layer can be heard: its envelope is up, or a cue rings."""
    xs, ys = plan.envelopes[name]
    ranges = []
    loud = ys > 0 if name not in plan.cue_only else np.zeros(len(ys), dtype=bool)
    for i in range(len(xs) - 1):
        if loud[i] or loud[i + 1]:
            ranges.append((int(xs[i]), int(np.ceil(xs[i + 1])) + 1))
    if loud[-1]:
        ranges.append((int(xs[-1]), 1 << 62))
    sr = plan.timeline.sample_rate
    for cue, duration_s in zip(cues, cue_durations_s, strict=True):
        begin = int(cue.time_s * sr)
        ranges.append((begin, begin + int(duration_s * sr) + 1))
    return ranges


def _merged(ranges: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted, disjoint (starts, ends) covering the same samples as ``ranges``."""
    starts: list[int] = []
    ends: list[int] = []
    for a, b in sorted(ranges):
        if ends and a <= ends[-1]:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends
