"""Issue 18, item 18: the plot of a long track reads clearly, and it takes a sidecar.

The plan is the dream's real soundscape plan (its preset, its cues, its
guided breathing) laid over a 32-minute timeline; no speech is synthesized
(only the segments' lengths matter to a plan).
"""

import json
from pathlib import Path

import matplotlib
import pytest
from matplotlib.colors import to_hex

from meditation.cli import main
from meditation.plot import draw_plan
from meditation.script import read_script
from meditation.segments import plan_segments
from meditation.settings import DEFAULT_SCRIPT
from meditation.soundscape import plan_ambience
from meditation.timeline import layout

matplotlib.use("Agg")
SR = 8000


def _long_plan(script, preset):
    planned = plan_segments(script, rate=0.8)
    lengths = [40 * SR] * sum(s.spoken for s in planned)  # long sentences: a 32-minute track
    timeline = layout(
        planned,
        lengths,
        sample_rate=SR,
        lead_in_s=4,
        tail_s=16,
        scene_names=[s.name for s in script.scenes],
    )
    plan = plan_ambience(preset, script=script, timeline=timeline, seed=1)
    timings = plan.timeline.to_dict()
    assert 25 * 60 < timings["duration"] < 40 * 60
    return timings


@pytest.fixture(scope="module")
def long_dream():
    """The dream's own preset: wing beats, bells, river, wind."""
    return _long_plan(read_script(DEFAULT_SCRIPT), "dream")


@pytest.fixture(scope="module")
def long_sleep(tmp_path_factory):
    """The dream under the sleep preset (river and beats, with glides), plus a breathing exercise."""
    text = Path(DEFAULT_SCRIPT).read_text(encoding="utf-8")
    head, sep, rest = text.partition("\n# ")
    second = rest.index("\n# ")
    text = head + sep + rest[:second] + "\n\n[breathe 4-7-8 x3]\n" + rest[second:]
    path = tmp_path_factory.mktemp("script") / "breathing.md"
    path.write_text(text, encoding="utf-8")
    return _long_plan(read_script(path), "sleep")


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_scene_labels_never_overprint(long_dream, tmp_path):
    fig = draw_plan(long_dream)
    fig.savefig(tmp_path / "long.png", dpi=110)  # looked at: tests/… see the report
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if t.get_gid() == "scene-label"]
    assert len(labels) >= len([s for s in long_dream["scenes"] if s["name"]]) // 2
    boxes = [t.get_window_extent(renderer) for t in labels]
    clashes = [
        (labels[i].get_text(), labels[j].get_text())
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if _overlap(boxes[i], boxes[j])
    ]
    assert clashes == []


def test_every_layer_has_its_own_colour(long_sleep):
    long_dream = long_sleep
    fig = draw_plan(long_dream)
    lines = {line.get_gid(): to_hex(line.get_color()) for line in fig.axes[0].lines}
    drawn = {name: lines[name] for name in long_dream["layers"] if name in lines}
    assert {"river", "beats"} <= set(drawn)  # once both blue
    assert len(set(drawn.values())) == len(drawn), drawn


def test_cues_are_labelled_by_what_they_do(long_dream):
    fig = draw_plan(long_dream)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    cue_labels = [t for t in labels if ":" in t]
    assert any("wing beat" in t for t in cue_labels), labels
    assert not any(t.startswith("wings") and "strike" in t for t in labels), labels


def test_the_breath_layer_is_drawn(long_sleep, tmp_path):
    long_dream = long_sleep
    assert long_dream["breaths"], "the script has a guided breathing exercise"
    draw_plan(long_dream).savefig(tmp_path / "sleep.png", dpi=110)
    fig = draw_plan(long_dream)
    bars = [line for line in fig.axes[0].lines if line.get_gid() == "breath"]
    assert len(bars) == len(long_dream["breaths"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "breathe in" in labels and "breathe out" in labels


def test_plot_takes_a_sidecar(long_dream, tmp_path, capsys):
    """The README says sidecars hold the timeline: ``plot`` refused one."""
    sidecar = tmp_path / "track.json"
    sidecar.write_text(json.dumps({"version": "x", "seed": 1, "timeline": long_dream}))
    assert main(["plot", str(sidecar), "-o", str(tmp_path / "p.png")]) == 0, capsys.readouterr()
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_the_beat_frequency_is_drawn(long_sleep):
    """The sleep preset glides its beats scene by scene (8 Hz down to 4 Hz, then delta)."""
    path = long_sleep["layers"]["beats"]["beat_hz"]
    hz = [f for _, f in path]
    assert hz[0] == 10.0 and min(hz) < 4.0 and 8.0 in hz
    fig = draw_plan(long_sleep)
    drawn = [line for ax in fig.axes for line in ax.lines if line.get_gid() == "beat-hz"]
    assert len(drawn) == 1 and list(drawn[0].get_ydata()) == hz
