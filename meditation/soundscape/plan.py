"""Planning a soundscape over a timeline: each layer's level envelope and where its cues fall.

``plan_ambience`` turns a preset and a timeline into an ``AmbiencePlan``:
per-layer gain envelopes, cue times, and the timeline's list of what sounds
in each scene. Nothing here makes audio: ``stream.AmbienceStream`` plays a plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import SoundscapeError
from ..levels import NOMINAL_RMS_DB, SILENT_DB, VOICE_RMS_DB
from ..timeline import LayerLevels, SceneSpan, Timeline
from .layers import Cue
from .layers.breath import BREATH_LEVEL_DB, breath_cues
from .preset import Anchor, CueSpec, LayerSpec, Preset, SceneSpec, load_preset
from .words import choose, tokens

__all__ = ["AmbiencePlan", "plan_ambience"]


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


def plan_ambience(
    preset_name: str | Preset,
    *,
    script,
    timeline: Timeline,
    seed: int,
    only: Sequence[str] | None = None,
    beds: Sequence[tuple[str, float]] = (),
    partial: bool = False,
) -> AmbiencePlan:
    """Plan a preset over a timeline: level envelopes, cue times and each scene's sounding layers.

    ``preset_name``: a preset's name or path, ``none``, ``auto`` (the
    script's words choose: ``words.auto_preset``; ``default`` without a
    script), or a ``Preset`` already made (``words.choose``).

    ``beds`` are recordings ``(path, level_db)`` added under the preset in
    every scene (``--bed``); with ``preset_name="none"`` they play alone.
    ``partial``: the timeline is still growing (``Timeline.settled``): only
    the audio's plan is made, not the timeline's list of what sounds where,
    and a layer not heard yet is no error.
    """
    if preset_name == "auto":
        preset_name = choose("auto", script)
    if isinstance(preset_name, Preset):
        preset = preset_name
    elif preset_name == "none":
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
    said = _word_times(timeline) if any(c.nth is not None for c in preset.cues) else {}
    for cue in preset.cues:
        time_s = _cue_time(cue, timeline, preset, said)
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
    # What chose each scene's sound (``--soundscape auto``), told only of the layers kept.
    why = {
        scene: tuple(
            c
            for c in (replace(c, layers=tuple(n for n in c.layers if n in keep)) for c in chosen)
            if c.layers or c.negated
        )
        for scene, chosen in preset.why.items()
    }
    return replace(
        preset,
        layers={k: v for k, v in preset.layers.items() if k in keep},
        scenes={
            k: SceneSpec({n: g for n, g in s.layers.items() if n in keep}, s.fade_s)
            for k, s in preset.scenes.items()
        },
        cues=tuple(c for c in preset.cues if c.layer in keep),
        why=why,
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


def _word_times(timeline: Timeline) -> dict[str, list[float]]:
    """Each word said (lower case), the seconds at which it is said, in order (breathing cues aside).

    Words are counted as ``words.find_words`` counts the script's, so a cue's
    ``nth`` finds its own occurrence; within a segment, words are taken to be
    spread evenly through it.
    """
    sr = timeline.sample_rate
    times: dict[str, list[float]] = {}
    for seg in timeline.segments:
        if seg.cue_at_s is not None:
            continue
        for offset, word, _ in tokens(seg.text):
            at = (seg.start + seg.length * offset / max(1, len(seg.text))) / sr
            times.setdefault(word.lower().replace("’", "'"), []).append(at)
    return times


def _cue_time(
    cue: CueSpec, timeline: Timeline, preset: Preset, said: dict[str, list[float]]
) -> float | None:
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
    if cue.at_text is None:
        raise ValueError("a cue needs one of at_text, at_scene, at")  # load_preset checks it
    if cue.nth is not None:  # the nth time the word is said
        times = said.get(cue.at_text, [])
        return times[cue.nth] if cue.nth < len(times) else None
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
        why = plan.preset.why.get(scene.name.lower(), ())
        scenes.append(replace(scene, layers=tuple(sounding), why=why))
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
        actions = tuple(c.action for c in plan.cues.get(name, ()))
        spec = plan.preset.layers.get(name)
        path: tuple[tuple[float, float], ...] = ()
        if spec is not None and (spec.kind or name) == "beats":
            path = _beat_path(spec.params, plan.cues.get(name, ()), plan.timeline.length / sr)
        levels.append(
            LayerLevels(
                name,
                tuple(float(x) / sr for x in xs),
                tuple(float(d) for d in db),
                cues,
                actions,
                path,
            )
        )
    return tuple(levels)


def _beat_path(params, cues, end_s: float) -> tuple[tuple[float, float], ...]:
    """The beat frequency a beats layer glides along, for the plot (the layer's own rules:
    a ``scene`` cue takes the scene's ``beat_hz`` from ``scenes``, a ``glide`` cue its own)."""
    hz = float(params.get("beat_hz", 10.0))
    scenes = {str(k).lower(): v for k, v in dict(params.get("scenes", {})).items()}
    path = [(0.0, hz)]
    for cue in sorted(cues, key=lambda c: c.time_s):
        if cue.action == "scene":
            target = scenes.get(str(cue.params.get("scene", "")).lower(), scenes.get("default", {}))
            glide = float(cue.params.get("fade_s", 10.0))
        else:
            target, glide = cue.params, float(cue.params.get("glide_s", 10.0))
        if "beat_hz" not in target:
            continue
        path += [(cue.time_s, hz), (cue.time_s + glide, float(target["beat_hz"]))]
        hz = float(target["beat_hz"])
    path.append((max(end_s, path[-1][0]), hz))
    return tuple(path)
