"""A picture of a track's plan: what happens when, at a glance.

From the timings JSON (``--timings``): the scenes as labelled bands, each
spoken segment as a bar, each soundscape layer's planned level over time,
and the finished track's short-term loudness (3 s windows, ITU-R BS.1770)
against the loudness target. Nothing is re-rendered: levels come from the
plan, loudness from the rendered file, measured once after the render.

Drawing needs matplotlib, an optional extra (the ``plot`` extra);
measuring does not.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from .decode import as_stereo, read_blocks
from .errors import MeditationError, SettingsError, install_hint
from .files import InputError, atomic_write_bytes, read_input
from .loudness import LoudnessMeter

__all__ = [
    "PLOT_FORMATS",
    "loudness_of_file",
    "draw_plan",
    "write_plot",
    "read_timings",
    "check_plot_path",
]

PLOT_FORMATS = (".png", ".svg", ".pdf")
_STEP_S = 1.0  # one short-term value a second: plenty for a picture, small in the JSON
_INSTALL = f"plotting needs matplotlib: {install_hint('plot')}"


def loudness_of_file(path: Path, *, target_lufs: float) -> dict[str, Any]:
    """Decode a rendered file and measure its short-term loudness series, for the timings and the plot."""
    meter = None
    for block, sample_rate in read_blocks(path):
        if meter is None:
            meter = LoudnessMeter(sample_rate)
        meter.feed(as_stereo(block))
    series = meter.short_term_lufs(_STEP_S) if meter is not None else np.zeros(0)
    return {
        "target_lufs": target_lufs,
        "integrated_lufs": round(meter.integrated_lufs() if meter is not None else -np.inf, 2),
        "short_term_step_s": _STEP_S,
        "short_term_lufs": [round(v, 2) if np.isfinite(v) else None for v in series],
    }


MAX_TIMINGS_BYTES = 64_000_000
"""Largest timings file read: a day-long track's loudness series takes a few megabytes."""


def read_timings(path: Path) -> dict[str, Any]:
    """Read a timings JSON file; one clear error if it is not one."""
    path = Path(path)
    try:
        raw = read_input(path, "timings file", MAX_TIMINGS_BYTES)
        data = json.loads(raw.decode("utf-8"))
    except InputError as exc:
        raise SettingsError(str(exc)) from None
    except UnicodeDecodeError:
        raise SettingsError(f"timings file {str(path)!r} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise SettingsError(f"{path}: not a meditation timings file (nested too deeply)") from None
    if isinstance(data, dict) and isinstance(data.get("timeline"), dict):
        data = data["timeline"]  # a render's or a batch's sidecar: the timeline is inside
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("scenes"), list)
        or not isinstance(data.get("duration"), (int, float))
    ):
        raise SettingsError(
            f"{path}: not a meditation timings file or sidecar (write one with 'meditation render --timings FILE')"
        )
    return data


def check_plot_path(path: Path) -> None:
    """Refuse an unknown picture format or a missing folder before any synthesis, and say if matplotlib is missing."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_FORMATS:
        raise SettingsError(
            f"unknown plot format {path.suffix or '(no suffix)'!r} for {path} (known: {', '.join(PLOT_FORMATS)})"
        )
    if not path.parent.is_dir():
        raise SettingsError(f"plot folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise SettingsError(f"plot path {str(path)!r} is a folder")
    _matplotlib()


def _matplotlib():
    try:
        import matplotlib  # noqa: PLC0415 - an optional extra, loaded only to draw
    except ImportError:
        raise MeditationError(_INSTALL) from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the Agg backend

    return plt


_SCENE_COLOURS = ("#e8eef7", "#f4efe4")
_LAYER_COLOURS = {
    "river": "#2a7fb8",
    "wind": "#7a8b99",
    "wings": "#c0392b",
    "drone": "#8e44ad",
    "bell": "#d4a017",
    "beats": "#16a085",
    "breath": "#e67e22",
}
# For layers without a colour of their own (recordings, new layers): none of the above.
_SPARE_COLOURS = ("#1f3a93", "#6d4c41", "#e84393", "#2d3436", "#8bc34a", "#00bcd4", "#9c27b0")
_CUE_MARKERS = {"strike": "v", "beat": "^", "beats": "^", "glide": "D", "scene": "D"}
_BREATH_COLOURS = {"in": "#f0a35e", "hold": "#c9b79c", "out": "#8fb8de"}


def _layer_colours(names) -> dict[str, str]:
    """One distinct colour per layer: its own where it has one, a spare one otherwise."""
    spare = iter(c for c in _SPARE_COLOURS)
    taken: dict[str, str] = {}
    for name in names:
        base = name.split(":")[0]
        colour = _LAYER_COLOURS.get(base)
        if colour is None or colour in taken.values():
            colour = next(spare, "#555555")
        taken[name] = colour
    return taken


def draw_plan(timings: dict[str, Any], *, title: str | None = None):
    """The plan as a matplotlib Figure: scenes, segments, layer levels and (if measured) short-term loudness.

    Scene bands carry the gid ``scene``, so a caller can count them.
    """
    plt = _matplotlib()
    duration = float(timings["duration"])
    minutes = duration > 120
    unit, scale = ("min", 60.0) if minutes else ("s", 1.0)
    loudness = timings.get("loudness")
    rows = 2 if loudness else 1
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(13, 6.5 if rows == 2 else 4.5),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 2][:rows]},
    )
    axes = axes[:, 0]
    levels_ax = axes[0]
    for ax in axes:
        for i, scene in enumerate(timings["scenes"]):
            band = ax.axvspan(
                scene["start"] / scale,
                scene["end"] / scale,
                color=_SCENE_COLOURS[i % 2],
                zorder=0,
                lw=0,
            )
            band.set_gid("scene")
        ax.grid(axis="y", color="#cccccc", lw=0.5, zorder=1)
        ax.set_xlim(0, duration / scale)

    # Layer levels (dB relative to the narration), from the plan's breakpoints.
    floor_db = -40.0
    layers = timings.get("layers") or {}
    colours = _layer_colours(layers)
    for name, layer in layers.items():
        xs = np.asarray(layer["time"], dtype=float)
        ys = np.array(
            [floor_db if v is None else max(floor_db, v) for v in layer["level_db"]], dtype=float
        )
        if len(xs) == 0:
            continue
        xs, ys = np.append(xs, duration), np.append(ys, ys[-1])  # the last level holds to the end
        colour = colours[name]
        if np.any(ys > floor_db):
            levels_ax.plot(xs / scale, ys, lw=2, color=colour, label=name, zorder=3, gid=name)
        if layer.get("beat_hz"):
            _draw_beat_frequency(levels_ax, layer["beat_hz"], scale, colour)
        if name == "breath" and timings.get("breaths"):
            continue  # its phases have a row of their own (below)
        cues = layer.get("cues", [])
        actions = layer.get("cue_actions") or ["cue"] * len(cues)  # older timings: no actions
        shown = set()
        for cue, action in zip(cues, actions, strict=False):
            levels_ax.plot(
                [cue / scale],
                [floor_db + 4],
                marker=_CUE_MARKERS.get(action, "o"),
                ms=8,
                color=colour,
                zorder=4,
                ls="none",
                label=None if action in shown else f"{name}: {_ACTION_WORDS.get(action, action)}",
            )
            shown.add(action)
    # Each spoken segment as a bar along the top: the narration's own row.
    voice_y = 2.0
    for seg in timings.get("segments", []):
        levels_ax.plot(
            [seg["start"] / scale, seg["end"] / scale],
            [voice_y, voice_y],
            lw=6,
            color="#222222",
            solid_capstyle="butt",
            zorder=3,
        )
    levels_ax.plot([], [], lw=6, color="#222222", label="narration (each segment)")
    # Guided breathing: each phase as a bar of its own colour, just above the narration.
    breath_y = voice_y + 3
    for phase in timings.get("breaths", []):
        levels_ax.plot(
            [phase["start"] / scale, (phase["start"] + phase["duration"]) / scale],
            [breath_y, breath_y],
            lw=6,
            color=_BREATH_COLOURS.get(phase["phase"], "#999999"),
            solid_capstyle="butt",
            zorder=3,
            gid="breath",
        )
    for phase in sorted({b["phase"] for b in timings.get("breaths", [])}):
        levels_ax.plot(
            [], [], lw=6, color=_BREATH_COLOURS.get(phase, "#999999"), label=f"breathe {phase}"
        )
    levels_ax.set_ylim(floor_db, voice_y + 15)
    ticks = [t for t in levels_ax.get_yticks() if floor_db <= t <= 0]
    levels_ax.set_yticks(ticks, ["off" if t == floor_db else f"{t:g}" for t in ticks])
    levels_ax.set_ylabel("level (dB re narration)")
    _scene_labels(levels_ax, fig, timings["scenes"], duration, (voice_y + 7.5, voice_y + 11.5))
    _why_labels(levels_ax, fig, timings["scenes"], duration, floor_db + 0.8)
    twin = any(
        layer.get("beat_hz") for layer in layers.values()
    )  # the Hz axis takes the right edge
    levels_ax.legend(
        loc="upper left", bbox_to_anchor=(1.07 if twin else 1.005, 1.0), fontsize=8, frameon=False
    )

    if loudness:
        ax = axes[1]
        step = float(loudness.get("short_term_step_s", _STEP_S))
        values = np.array(
            [np.nan if v is None else v for v in loudness["short_term_lufs"]], dtype=float
        )
        times = (np.arange(len(values)) + 1) * step
        ax.plot(
            times / scale,
            values,
            color="#1b6e3c",
            lw=1.5,
            label="short-term loudness (3 s)",
            zorder=3,
        )
        target = loudness.get("target_lufs")
        if target is not None:
            ax.axhline(
                target, color="#c0392b", ls="--", lw=1.2, label=f"target {target:g} LUFS", zorder=3
            )
        finite = values[np.isfinite(values)]
        low = min(float(np.percentile(finite, 2)) if len(finite) else -40.0, (target or -16) - 6)
        ax.set_ylim(
            max(-60.0, low - 3), max((target or -16) + 6, float(finite.max(initial=-60)) + 2)
        )
        ax.set_ylabel("LUFS")
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    axes[-1].set_xlabel(f"time ({unit})")
    heading = title or timings.get("title") or "Plan"
    fig.suptitle(f"{heading} — {int(duration // 60)}:{int(round(duration % 60)):02d}", fontsize=12)
    fig.tight_layout()
    return fig


def write_plot(timings: dict[str, Any], path: Path, *, title: str | None = None) -> Path:
    """Draw the plan into ``path`` (PNG, SVG or PDF by suffix), written under a temporary name and renamed."""
    path = Path(path)
    check_plot_path(path)
    plt = _matplotlib()
    fig = draw_plan(timings, title=title)
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=path.suffix.lower()[1:], dpi=110)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _draw_beat_frequency(ax, path, scale: float, colour: str) -> None:
    """The beat frequency on a right-hand axis of its own (Hz), dashed in the layer's colour."""
    twin = ax.twinx()
    times = [t / scale for t, _ in path]
    hz = [f for _, f in path]
    twin.plot(times, hz, ls="--", lw=1.5, color=colour, gid="beat-hz", zorder=3)
    twin.set_ylim(0, max(hz) * 1.4)
    twin.set_ylabel("beat frequency (Hz)", color=colour)
    twin.tick_params(axis="y", colors=colour)
    ax.plot([], [], ls="--", lw=1.5, color=colour, label="beat frequency (right axis)")


_ACTION_WORDS = {
    "strike": "strike",
    "beat": "wing beat",
    "beats": "wing beats",
    "glide": "beat glide",
    "scene": "beat glide (scene)",
    "in": "breathe in",
    "hold": "hold",
    "out": "breathe out",
    "cue": "cue",
}


def _scene_labels(ax, fig, scenes, duration: float, rows: tuple[float, float]) -> None:
    """Scene names that never overprint: each fits its band's width (elided if need be), and
    neighbours alternate between two rows; a band too narrow for three letters gets none."""
    width_px = fig.get_figwidth() * fig.dpi * 0.78  # the levels axes' share of the figure
    char_px = 8.5 * fig.dpi / 72 * 0.6  # an average glyph at 8.5 pt
    row = 0
    for scene in scenes:
        if not scene["name"]:
            continue
        band_px = (scene["end"] - scene["start"]) / duration * width_px
        # Staggered, a label may use the space of the band beside it too.
        chars = int(2 * band_px / char_px) - 1
        if chars < 3:
            continue
        mid = (scene["start"] + scene["end"]) / 2 / (60.0 if duration > 120 else 1.0)
        ax.text(
            mid,
            rows[row],
            _label(scene["name"], max(3, min(18, chars))),
            ha="center",
            va="center",
            fontsize=8.5,
            color="#333333",
            zorder=5,
            gid="scene-label",
        )
        row = 1 - row


def _why_labels(ax, fig, scenes, duration: float, y: float) -> None:
    """Under each scene chosen by ``--soundscape auto``, its layers and the words that chose them
    (``waves ← shore, sea``), elided to the band's width."""
    width_px = fig.get_figwidth() * fig.dpi * 0.78
    char_px = 7 * fig.dpi / 72 * 0.6
    for scene in scenes:
        parts = []
        for choice in scene.get("why") or ():
            if choice.get("negated") or not choice.get("layers"):
                continue
            if choice.get("kept_from"):
                parts.append(f"{'+'.join(choice['layers'])} (kept)")
                continue
            words = ", ".join(dict.fromkeys(w["word"].lower() for w in choice.get("words", ())))
            mark = "♪" if choice.get("cue") else ""
            parts.append(f"{mark}{'+'.join(choice['layers'])}" + (f" ← {words}" if words else ""))
        if not parts:
            continue
        chars = int((scene["end"] - scene["start"]) / duration * width_px / char_px) - 1
        if chars < 4:
            continue
        text = textwrap.shorten("; ".join(parts), max(4, chars), placeholder="…")
        mid = (scene["start"] + scene["end"]) / 2 / (60.0 if duration > 120 else 1.0)
        ax.text(
            mid,
            y,
            text,
            ha="center",
            va="bottom",
            fontsize=7,
            color="#555555",
            zorder=5,
            gid="scene-why",
        )


def _label(name: str, width: int = 18) -> str:
    """A scene name on at most two lines, so neighbouring labels do not collide."""
    lines = textwrap.wrap(name, width) or [""]
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), width, placeholder="…")]
    return "\n".join(lines)
