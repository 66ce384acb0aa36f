"""The picture of a plan: one band per scene, the segments, each layer's level, and the short-term loudness."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from published import DREAM_SCENES

from meditation.cli import main
from meditation.errors import install_hint
from meditation.loudness import short_term_loudness
from meditation.plot import draw_plan, loudness_of_file


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.size


def test_meditation_plot_draws_the_dreams_plan(dream, tmp_path):
    out = tmp_path / "plan.png"
    assert main(["plot", str(dream["timings"]), "-o", str(out)]) == 0
    width, height = _png_size(out)
    assert 1000 <= width <= 3000 and 400 <= height <= 1500
    assert out.stat().st_size > 30_000  # a picture with content, not an empty frame


def test_the_figure_has_one_band_per_scene_a_bar_per_segment_and_a_line_per_layer(dream):
    timings = dream["timings_data"]
    fig = draw_plan(timings)
    levels, loudness = fig.axes[:2]
    bands = [p for p in levels.patches if p.get_gid() == "scene"]
    assert len(bands) == len(DREAM_SCENES) == len(timings["scenes"])
    labels = [t.get_text().replace("\n", " ") for t in levels.texts]
    assert labels == list(DREAM_SCENES)
    legend = [t.get_text() for t in levels.get_legend().get_texts()]
    for layer in ("drone", "river", "wind"):
        assert layer in legend
    # Breathing phases are bars of the same width on a row of their own (gid "breath").
    segment_bars = [
        line
        for line in levels.lines
        if line.get_linewidth() == 6 and len(line.get_xdata()) == 2 and line.get_gid() != "breath"
    ]
    assert len(segment_bars) == len(timings["segments"])
    assert any("target -16 LUFS" in t.get_text() for t in loudness.get_legend().get_texts())


def test_render_plot_writes_the_picture_beside_the_output(dream):
    assert _png_size(dream["plot"])[0] >= 1000


def test_the_timings_carry_the_finished_tracks_short_term_loudness(dream):
    loudness = dream["timings_data"]["loudness"]
    assert loudness["target_lufs"] == -16 and loudness["integrated_lufs"] == pytest.approx(
        -16, abs=0.5
    )
    values = np.array([v for v in loudness["short_term_lufs"] if v is not None])
    assert len(values) == pytest.approx(
        dream["timings_data"]["duration"], abs=2
    )  # one value a second
    assert abs(np.median(values) - (-16)) < 3  # speech sits around the target most of the time


def test_the_timings_carry_each_layers_planned_level(dream):
    layers = dream["timings_data"]["layers"]
    river = layers["river"]
    scenes = {s["name"]: s for s in dream["timings_data"]["scenes"]}
    valley = scenes["The valley and the river"]
    # dream.toml: river level_db -12, 0 dB in the valley; silent in the library.
    level_in_valley = np.interp(
        valley["end"] - 1, river["time"], [(-99 if v is None else v) for v in river["level_db"]]
    )
    assert level_in_valley == pytest.approx(-12.0, abs=0.01)
    assert river["level_db"][0] is None
    assert layers["bell"]["cues"]  # the bell only strikes


def test_short_term_loudness_meets_the_ebu_reference(tmp_path):
    """EBU Tech 3341 case 1: a 1 kHz stereo sine at −23 dBFS reads −23.0 ± 0.1 LUFS."""
    sr = 48000
    t = np.arange(10 * sr) / sr
    sine = (10 ** (-23 / 20) * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    path = tmp_path / "sine.wav"
    sf.write(path, np.stack([sine, sine], axis=1), sr, subtype="FLOAT")
    result = loudness_of_file(path, target_lufs=-23)
    steady = np.array(result["short_term_lufs"][3:])
    assert np.all(np.abs(steady - (-23.0)) <= 0.1)


def test_short_term_windows_are_three_seconds():
    hops = np.concatenate(
        [np.full(50, 1e-4), np.full(50, 1e-2)]
    )  # 100 ms hops: 5 s quiet, then 5 s loud
    series = short_term_loudness(hops)
    assert len(series) == 10
    assert series[4] == pytest.approx(-0.691 - 40, abs=0.01)  # 3 s window wholly quiet
    assert series[7] == pytest.approx(-0.691 - 20, abs=0.01)  # 3 s after the change: wholly loud
    assert -40.7 < series[5] < -20.7  # the window straddles the change


def test_a_plan_without_loudness_or_layers_still_draws(tmp_path):
    timings = {
        "duration": 30.0,
        "sample_rate": 44100,
        "scenes": [{"name": "", "start": 0, "end": 30, "layers": []}],
        "segments": [{"text": "Hi.", "start": 2, "end": 3, "scene": ""}],
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps(timings), encoding="utf-8")
    assert main(["plot", str(path)]) == 0
    assert _png_size(tmp_path / "t.png")[0] > 500
    assert len(draw_plan(timings).axes) == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("{not json", "t.json:1:2: not valid JSON"),
        ('{"a": 1}', "not a meditation timings file"),
    ],
)
def test_bad_timings_are_refused_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "t.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["plot", str(path), "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "p.png").exists()


def test_plot_never_writes_over_its_timings(tmp_path, capsys):
    path = (
        tmp_path / "t.png"
    )  # a timings file with a picture's name: -o the same file must be refused
    path.write_text(json.dumps({"duration": 1, "scenes": []}), encoding="utf-8")
    assert main(["plot", str(path), "-o", str(path)]) == 2
    assert "input" in capsys.readouterr().err
    assert json.loads(path.read_text(encoding="utf-8"))["duration"] == 1


def test_without_matplotlib_one_line_says_how_to_install_it(tmp_path):
    timings = tmp_path / "t.json"
    timings.write_text(json.dumps({"duration": 1, "scenes": []}), encoding="utf-8")
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from meditation.cli import main\n"
        f"sys.exit(main(['plot', {str(timings)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"meditation: error: plotting needs matplotlib: {install_hint('plot')}"
    )
    assert not (tmp_path / "t.png").exists()
