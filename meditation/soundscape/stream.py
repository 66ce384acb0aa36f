"""Planning and streaming a soundscape over a timeline.

``plan_ambience`` turns a preset and a timeline into per-layer gain envelopes
and cue times; ``AmbiencePlan.build`` makes a fresh, seeded streaming renderer
from that plan (the master stage streams the mix twice, so it builds two).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import SoundscapeError
from ..levels import NOMINAL_RMS_DB, SILENT_DB, VOICE_RMS_DB
from ..timeline import LayerLevels, SceneSpan, Timeline
from .layers import BLOCK_SIZE, Cue, Layer
from .layers.breath import BREATH_LEVEL_DB, breath_cues
from .preset import Anchor, CueSpec, LayerSpec, Preset, SceneSpec, load_preset

__all__ = ["AmbiencePlan", "Ambience", "plan_ambience"]


@dataclass(frozen=True)
class AmbiencePlan:
    """Where each layer sounds and how loud: everything but the audio."""

    preset: Preset
    timeline: Timeline
    """The timeline with each scene's sounding layers filled in."""
    envelopes: Mapping[str, tuple[np.ndarray, np.ndarray]]
    """Per layer: breakpoints (sample positions, linear gains) of its level over the track."""
    cues: Mapping[str, tuple[Cue, ...]]
    seed: int
    cue_only: frozenset = frozenset()
    """Layers no scene mentions: they play their cues at their level and are silent otherwise."""

    def build(self, until: int | None = None) -> Ambience:
        """A fresh streaming renderer; two builds render identical audio.

        ``until``: this plan is final only before that sample (the timeline
        is still growing, see ``Ambience.adopt``); cues at or after it are
        held back.
        """
        return Ambience(self, until)

    def final_before(self, settled: int) -> int:
        """Where this plan's audio is final, made from a timeline final before sample ``settled``.

        Later cues are placed at the earliest they can be (``Timeline.settled``),
        but a cue may be set to play before its anchor (a negative
        ``offset_s``) and a layer may look ahead for its cues
        (``Layer.cue_lookahead_s``): this is ``settled`` less both.
        """
        sr = self.timeline.sample_rate
        early = min((c.offset_s for c in self.preset.cues), default=0.0)
        ahead = max((spec.cls.cue_lookahead_s for spec in self.preset.layers.values()), default=0.0)
        return settled + int(np.floor((min(0.0, early) - ahead) * sr)) - 1


class Ambience:
    """Streams every layer of a plan with its level envelope applied."""

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
            self._active[name] = _merged(
                _active_ranges(
                    plan, name, [layer.cue_duration_s(c) for c in cues] if cues else [], cues
                )
            )
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
    for cue, duration_s in zip(cues, cue_durations_s):
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


def plan_ambience(
    preset_name: str,
    *,
    script,
    timeline: Timeline,
    seed: int,
    only: Sequence[str] | None = None,
    beds: Sequence[tuple[str, float]] = (),
    partial: bool = False,
) -> AmbiencePlan:
    """Plan a preset over a timeline: level envelopes, cue times and each scene's sounding layers.

    ``beds`` are recordings ``(path, level_db)`` added under the preset in
    every scene (``--bed``); with ``preset_name="none"`` they play alone.
    ``partial``: the timeline is still growing (``Timeline.settled``): only
    the audio's plan is made, not the timeline's list of what sounds where,
    and a layer not heard yet is no error.
    """
    if preset_name == "auto":
        preset_name = (
            script.settings.get("soundscape") if script is not None else None
        ) or "default"
    if preset_name == "none":
        preset = Preset("none", "", {}, {"default": SceneSpec({}, 6.0)}, (), 6.0, Path("none"))
    else:
        preset = load_preset(preset_name)
    # --- guided breathing: the breath layer paces every exercise in the script,
    # listed in the preset or not (``--layers`` can still leave it out) ---
    if timeline.breaths and "breath" not in preset.layers:
        preset = replace(
            preset, layers={**preset.layers, "breath": LayerSpec("breath", BREATH_LEVEL_DB, {})}
        )
    # --- end guided breathing ---
    if only is not None:
        unknown = [n for n in only if n not in preset.layers]
        if unknown:
            raise SoundscapeError(
                f"--layers: {', '.join(unknown)} not in soundscape {preset.name!r} (it has: {', '.join(preset.layers)})"
            )
        preset = _keep_layers(preset, only)
    if beds:
        preset = _with_beds(preset, beds)
    offset_db = VOICE_RMS_DB - NOMINAL_RMS_DB
    envelopes = {}
    in_scenes = {name for scene in preset.scenes.values() for name in scene.layers}
    cue_only = frozenset(c.layer for c in preset.cues if c.layer not in in_scenes)
    if "breath" in preset.layers and "breath" not in in_scenes:
        cue_only |= {"breath"}  # guided breathing: sounds on its cues only
    for name, spec in preset.layers.items():
        if name in cue_only:
            gain = 10 ** ((spec.level_db + offset_db) / 20)
            envelopes[name] = (np.array([0.0]), np.array([gain]))
        else:
            envelopes[name] = _envelope(preset, spec, timeline, offset_db)
    cues: dict[str, list[Cue]] = {}
    for cue in preset.cues:
        time_s = _cue_time(cue, timeline, preset)
        if time_s is None:
            continue
        time_s = min(max(0.0, time_s + cue.offset_s), timeline.duration_s)
        cues.setdefault(cue.layer, []).append(Cue(time_s, cue.action, dict(cue.params)))
    for name, spec in preset.layers.items():
        if getattr(spec.cls, "follows_scenes", False):
            # Such a layer (beats) sets itself per scene: tell it each scene's name and crossfade.
            for scene in timeline.scenes:
                fade = _scene_spec(preset, scene).fade_s
                cues.setdefault(name, []).append(
                    Cue(
                        scene.start / timeline.sample_rate,
                        "scene",
                        {"scene": scene.name, "fade_s": fade},
                    )
                )
    if "breath" in preset.layers and timeline.breaths:
        cues.setdefault("breath", []).extend(
            breath_cues(timeline.breaths, timeline.sample_rate)
        )  # guided breathing
    if only is not None and not partial:
        # A layer asked for by name that never sounds would give a silent track
        # (e.g. `ambient --soundscape dream --layers river`: no script, so only
        # the preset's default scene plays, and the river is not in it).
        silent = [
            n
            for n in preset.layers
            if not cues.get(n) and (n in cue_only or not np.any(envelopes[n][1] > 0))
        ]
        if silent:
            where = sorted(
                {
                    scene
                    for scene, spec in preset.scenes.items()
                    if any(n in spec.layers for n in silent)
                }
                - {"default"}
            )
            raise SoundscapeError(
                f"--layers: {', '.join(silent)} would be silent throughout this track in soundscape {preset.name!r}"
                + (f" (it plays only in the scenes: {', '.join(where)})" if where else "")
            )
    plan = AmbiencePlan(
        preset, timeline, envelopes, {k: tuple(v) for k, v in cues.items()}, seed, cue_only
    )
    if partial:
        return plan
    return AmbiencePlan(preset, _with_layers(plan), envelopes, plan.cues, seed, cue_only)


def _with_beds(preset: Preset, beds: Sequence[tuple[str, float]]) -> Preset:
    """The preset with each bed recording as one more layer, playing at its level in every scene."""
    layers = dict(preset.layers)
    added = []
    for i, (path, level_db) in enumerate(beds):
        name = "bed" if i == 0 else f"bed{i + 1}"
        while name in layers:
            name += "_"
        layers[name] = LayerSpec(name, float(level_db), {"file": str(path)}, "recording")
        added.append(name)
    scenes = {
        k: SceneSpec({**s.layers, **{n: 0.0 for n in added}}, s.fade_s)
        for k, s in preset.scenes.items()
    }
    return replace(preset, layers=layers, scenes=scenes)


def _keep_layers(preset: Preset, only: Sequence[str]) -> Preset:
    keep = set(only)
    return Preset(
        name=preset.name,
        description=preset.description,
        layers={k: v for k, v in preset.layers.items() if k in keep},
        scenes={
            k: SceneSpec({n: g for n, g in s.layers.items() if n in keep}, s.fade_s)
            for k, s in preset.scenes.items()
        },
        cues=tuple(c for c in preset.cues if c.layer in keep),
        fade_s=preset.fade_s,
        path=preset.path,
        voice=preset.voice,
    )


def _scene_spec(preset: Preset, scene: SceneSpan) -> SceneSpec:
    return preset.scenes.get(scene.name.lower(), preset.scenes["default"])


def _envelope(
    preset: Preset, spec: LayerSpec, timeline: Timeline, offset_db: float
) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of a layer's linear gain: each scene's level, crossfaded from the scene's start."""
    sr = timeline.sample_rate
    xs: list[float] = []
    ys: list[float] = []
    previous = None
    for scene in timeline.scenes:
        scene_spec = _scene_spec(preset, scene)
        db = scene_spec.layers.get(spec.name)
        gain = 0.0 if db is None else 10 ** ((spec.level_db + db + offset_db) / 20)
        if previous is None:
            xs.append(float(scene.start))
            ys.append(gain)
        elif gain != previous:
            fade = scene_spec.fade_s * sr
            xs += [float(scene.start), float(scene.start) + max(1.0, fade)]
            ys += [previous, gain]
        previous = gain
    if not xs:
        xs, ys = [0.0], [0.0]
    return np.asarray(xs), np.asarray(ys)


def _cue_time(cue: CueSpec, timeline: Timeline, preset: Preset) -> float | None:
    sr = timeline.sample_rate
    if cue.at is Anchor.START:
        return 0.0
    if cue.at is Anchor.END:
        last = timeline.segments[-1].end if timeline.segments else timeline.length
        return last / sr
    if cue.at_scene is not None:
        for scene in timeline.scenes:
            if scene.name.lower() == cue.at_scene.lower():
                return scene.start / sr
        return None  # the script has no such scene: the cue simply does not play
    needle = " ".join(cue.at_text.lower().split())
    for seg in timeline.segments:
        text = " ".join(seg.text.lower().split())
        index = text.find(needle)
        if index >= 0:
            # Words are spread roughly evenly through a segment: estimate when these ones fall.
            return (seg.start + seg.length * index / max(1, len(text))) / sr
    return None


def _with_layers(plan: AmbiencePlan) -> Timeline:
    """The timeline with, per scene, the layers that sound in it (fading or ringing counts)."""
    # Only layers with cues are made here, for their cues' lengths (and so
    # that a bad cue is refused while planning, before any audio).
    probe = {
        name: spec.cls(
            sample_rate=plan.timeline.sample_rate,
            rng=np.random.default_rng(0),
            params=spec.params,
            cues=plan.cues[name],
        )
        for name, spec in plan.preset.layers.items()
        if plan.cues.get(name)
    }
    scenes = []
    for scene in plan.timeline.scenes:
        sounding = []
        for name in plan.preset.layers:
            xs, ys = plan.envelopes[name]
            level = np.interp(
                np.linspace(scene.start, max(scene.start, scene.end - 1), 256), xs, ys
            )
            # Also the exact breakpoints inside the scene, so short fades are not missed.
            inside = ys[(xs >= scene.start) & (xs < scene.end)]
            peak = max(float(level.max(initial=0.0)), float(inside.max(initial=0.0)))
            rings = any(
                cue.time_s * plan.timeline.sample_rate < scene.end
                and (cue.time_s + probe[name].cue_duration_s(cue)) * plan.timeline.sample_rate
                > scene.start
                for cue in plan.cues.get(name, ())
            )
            if name in plan.cue_only:
                peak = 0.0
            if (peak > 0 and 20 * np.log10(peak) > SILENT_DB) or rings:
                sounding.append(name)
        scenes.append(replace(scene, layers=tuple(sounding)))
    return replace(plan.timeline, scenes=tuple(scenes), layer_levels=_layer_levels(plan))


def _layer_levels(plan: AmbiencePlan) -> tuple[LayerLevels, ...]:
    """The plan's level envelopes in seconds and dB relative to the narration, for the timings and the plot."""
    sr = plan.timeline.sample_rate
    offset_db = VOICE_RMS_DB - NOMINAL_RMS_DB
    levels = []
    for name, (xs, ys) in plan.envelopes.items():
        with np.errstate(divide="ignore"):
            db = 20 * np.log10(np.asarray(ys, dtype=np.float64)) - offset_db
        if name in plan.cue_only:
            db = np.full_like(db, -np.inf)  # heard only in its cues
        cues = tuple(c.time_s for c in plan.cues.get(name, ()))
        levels.append(
            LayerLevels(name, tuple(float(x) / sr for x in xs), tuple(float(d) for d in db), cues)
        )
    return tuple(levels)
