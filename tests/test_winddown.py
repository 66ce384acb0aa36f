"""Wind-down narration (issue 22 §1): rate, level and pauses follow a curve over the session.

Measured on the real voice's stem: the same sentences are said in the first
and the last scene, so the ratio of their spoken lengths is the ratio of the
speaking rates; the level is the RMS of the voice stem inside those
sentences; the track's loudness is ffmpeg's, over what ``--loudness-scope``
says is measured.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf
from ffmpeg import ebur128, ffmpeg
from measure import rms_db

from meditation.batch import expand_manifest
from meditation.cli import main
from meditation.segments import Segment
from meditation.winddown import WindDown, parse_wind_down, positions, segment_rates, wind_down

SAME = (
    "Settle into a comfortable position and let your shoulders soften. "
    "Notice the weight of your body resting here. "
    "Let the breath find its own easy rhythm."
)

SCRIPT = f"""---
title: Wind down
lead_in: 1
tail: 4
wind-down: {{rate: 0.75, level: -4dB, pauses: 1.6}}
rate: 0.9
---
# Arrive

{SAME}

# Soften

Let the day fall away from you now. There is nothing you need to do. Feel the quiet spreading through your arms and legs.

# Drift

{SAME}
"""


def _render(tmp_path, text=SCRIPT, name="wd", *extra):
    script = tmp_path / f"{name}.md"
    script.write_text(text, encoding="utf-8")
    out = tmp_path / f"{name}.wav"
    stems = tmp_path / f"{name}-stems"
    timings = tmp_path / f"{name}.json"
    code = main(
        [
            "render",
            str(script),
            "-o",
            str(out),
            "--stems",
            str(stems),
            "--timings",
            str(timings),
            *extra,
        ]
    )
    assert code == 0
    return out, stems, json.loads(timings.read_text(encoding="utf-8"))


def _by_scene(timings, scene):
    return [s for s in timings["segments"] if s["scene"] == scene and s["end"] > s["start"]]


@pytest.fixture(scope="module")
def wound(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("winddown"))


@pytest.mark.slow
def test_the_last_scene_is_spoken_slower_softer_and_with_longer_pauses(wound):
    _check_wound_down(*wound)


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["hibari:heart", "pyttsx3"])
def test_every_engine_winds_down(tmp_path, voice):
    _check_wound_down(*_render(tmp_path, SCRIPT, "wd", "--voice", voice))


def _check_wound_down(out, stems, timings):
    first, last = _by_scene(timings, "Arrive"), _by_scene(timings, "Drift")
    assert [s["text"] for s in first] == [s["text"] for s in last]  # the same words
    # Rate: the same sentences, so spoken length goes as 1 / rate.
    ratio = sum(s["end"] - s["start"] for s in first) / sum(s["end"] - s["start"] for s in last)
    assert 0.68 <= ratio <= 0.85, ratio
    # Level: on the voice stem, inside the sentences.
    voice, sr = sf.read(stems / "voice.wav", dtype="float64")

    def level(segments):
        return rms_db(
            np.concatenate([voice[int(s["start"] * sr) : int(s["end"] * sr)] for s in segments])
        )

    drop = level(first) - level(last)
    assert 3.0 <= drop <= 5.0, drop
    # Pauses: the gaps between the last scene's sentences are 1.6 × the first's.
    gaps = lambda segs: [b["start"] - a["end"] for a, b in zip(segs, segs[1:])]  # noqa: E731
    assert min(gaps(last)) > 1.4 * max(gaps(first)), (gaps(first), gaps(last))
    # The ambience takes over: its level against the voice's rises by the drop.
    bed = sum(
        sf.read(p, dtype="float64")[0] for p in sorted(stems.glob("*.wav")) if p.stem != "voice"
    )

    def bed_over_voice(segments):
        spans = [slice(int(s["start"] * sr), int(s["end"] * sr)) for s in segments]
        return rms_db(np.concatenate([bed[x] for x in spans])) - level(segments)

    assert bed_over_voice(last) - bed_over_voice(first) > 3.0
    # The track still lands on the target (auto scope: all of this short track).
    loudness, _ = ebur128(out)
    assert abs(loudness + 16.0) <= 0.5, loudness


@pytest.mark.slow
def test_the_timings_record_each_segments_rate_and_level(wound):
    _, _, timings = wound
    by_scene = {
        name: {(s["rate"], s["level_db"]) for s in _by_scene(timings, name)}
        for name in ("Arrive", "Soften", "Drift")
    }
    # Linear over the scenes from the render's rate (0.9) and 0 dB.
    assert by_scene == {
        "Arrive": {(0.9, 0.0)},
        "Soften": {(0.7875, -2.0)},
        "Drift": {(0.675, -4.0)},
    }


@pytest.mark.slow
def test_a_wind_down_render_is_the_same_bit_for_bit(wound, tmp_path):
    out, _, _ = wound
    # From the cache the speech arrives all at once, not a segment at a time as it was spoken:
    # the voice's level curve must give the premix the same samples either way.
    cached, _, _ = _render(tmp_path, SCRIPT, "cached")
    spoken, _, _ = _render(tmp_path, SCRIPT, "spoken", "--no-cache")
    first = sf.read(out, dtype="int32")[0].tobytes()
    assert sf.read(cached, dtype="int32")[0].tobytes() == first
    assert sf.read(spoken, dtype="int32")[0].tobytes() == first


@pytest.mark.slow
def test_speech_scope_loudness_lands_on_target_with_a_wind_down(tmp_path):
    out, _, timings = _render(tmp_path, SCRIPT, "speech", "--loudness-scope", "speech")
    spoken = [s for s in timings["segments"] if s["end"] > s["start"]]
    cut = tmp_path / "speech-only.wav"
    subprocess.run(
        [
            ffmpeg(),
            "-v",
            "error",
            "-i",
            str(out),
            "-ss",
            str(spoken[0]["start"]),
            "-to",
            str(spoken[-1]["end"]),
            str(cut),
        ],
        check=True,
        timeout=120,
    )
    loudness, _ = ebur128(cut)
    assert abs(loudness + 16.0) <= 0.5, loudness


@pytest.mark.slow
def test_a_preset_can_ask_for_the_wind_down(tmp_path):
    preset = tmp_path / "sleepy.toml"
    preset.write_text(
        '[layers.drone]\nlevel_db = -14.0\n\n[wind-down]\nrate = [1.0, 0.8]\nlevel = "-3dB"\n',
        encoding="utf-8",
    )
    text = SCRIPT.replace("wind-down: {rate: 0.75, level: -4dB, pauses: 1.6}\n", "")
    _, _, timings = _render(tmp_path, text, "preset", "--soundscape", str(preset), "--rate", "1")
    assert {(s["rate"], s["level_db"]) for s in _by_scene(timings, "Drift")} == {(0.8, -3.0)}
    assert {(s["rate"], s["level_db"]) for s in _by_scene(timings, "Arrive")} == {(1.0, 0.0)}


@pytest.mark.parametrize(
    "value, col, words",
    [
        ("{rate: 3, level: -4dB}", 13, "rate 3 is out of range"),
        ("{rate: 0.75, levl: -4dB}", 25, "unknown 'levl'"),
        ("{rate: 0.75, level: loud}", 25, "level must be a level in dB"),
        ("{rate: 0.75", 23, "never closed"),
        ("{by: hours, rate: 0.8}", 13, "by must be scenes or time"),
    ],
)
def test_a_bad_wind_down_is_one_line_at_its_place(tmp_path, capsys, value, col, words):
    script = tmp_path / "bad.md"
    script.write_text(
        SCRIPT.replace("{rate: 0.75, level: -4dB, pauses: 1.6}", value), encoding="utf-8"
    )
    out = tmp_path / "bad.wav"
    assert main(["render", str(script), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"{script}:5:{col}: wind-down: " in err, err
    assert words in err
    assert not out.exists()


def test_a_bad_wind_down_option_is_one_line(tmp_path, capsys):
    out = tmp_path / "x.wav"
    assert main(["render", "-o", str(out), "--wind-down", "rate=0.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "rate 0.2 is out of range" in err and err.count("\n") == 0
    assert not out.exists()


def test_curves_from_points_and_per_scene_values():
    # One value: from 1 × (0 dB) to it; a list: its points spread evenly.
    wind = parse_wind_down("rate=[1, 0.9, 0.7], level=-6dB, pauses=2")
    assert wind.at(0.0) == (1.0, 0.0, 1.0)
    assert wind.at(0.5) == (0.9, -3.0, 1.5)
    assert wind.at(1.0) == (0.7, -6.0, 2.0)
    assert parse_wind_down("on") == WindDown(rate=(0.8,), level_db=(-4.0,), pauses=(1.5,))
    assert parse_wind_down("off") is None
    assert parse_wind_down({"rate": 0.75, "level": "-4dB"}) == parse_wind_down(
        "rate: 0.75, level: -4 dB"
    )


def _plan(scenes):
    return [
        Segment(text="word " * 20, scene=name, gap_before_s=2.0)
        for name, count in scenes
        for _ in range(count)
    ]


def test_rates_are_a_multiplier_on_the_base_rate():
    planned = _plan([("a", 2), ("b", 2), ("c", 2)])
    wind = parse_wind_down("rate=0.5")
    # The base (a --rate, a pace) is what the curve bends.
    assert segment_rates(1.2, planned, wind) == [1.2, 1.2, 0.9, 0.9, 0.6, 0.6]
    assert segment_rates(0.9, planned, None) == [0.9] * 6
    # By time: every segment further on is slower, scenes or not.
    rates = segment_rates(1.0, planned, parse_wind_down("rate=0.6, by=time"))
    assert rates[0] == 1.0 and rates[-1] == 0.6 and rates == sorted(rates, reverse=True)
    assert len(set(rates)) == 6
    # One scene: by time, whatever is asked.
    assert positions(_plan([("only", 3)]), wind, 1.0) == pytest.approx([0.0, 0.5, 1.0])


def test_pauses_and_plain_breaths_stretch_but_not_a_breathing_exercise():
    planned = [
        Segment(text="Rest.", scene="a", gap_before_s=0.0),
        Segment(text="", scene="b", gap_before_s=4.0, breaths=(("in", 4.0), ("out", 6.0))),
        Segment(text="Sleep.", scene="b", gap_before_s=2.0, breathe_s=(6.0,)),
    ]
    wound = wind_down(planned, 0.9, parse_wind_down("pauses=2"))
    assert [s.gap_before_s for s in wound] == [0.0, 8.0, 4.0]
    assert wound[1].breaths == (("in", 4.0), ("out", 6.0))
    assert wound[2].breathe_s == (12.0,)
    assert [s.rate for s in wound] == [0.9, 0.9, 0.9]


def test_a_bad_wind_down_in_a_preset_or_a_manifest_is_named(tmp_path, capsys):
    preset = tmp_path / "sleepy.toml"
    preset.write_text("[layers.drone]\n\n[wind-down]\npauses = 9\n", encoding="utf-8")
    script = tmp_path / "s.md"
    script.write_text("Rest now.\n", encoding="utf-8")
    out = tmp_path / "s.wav"
    assert main(["render", str(script), "--soundscape", str(preset), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{preset}: wind-down: pauses 9 is out of range" in err and err.count("\n") == 0
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        'output = "{name}.wav"\n[[variants]]\nname = "v"\nscript = "s.md"\nwind_down = "rate=[1, 0.2]"\n',
        encoding="utf-8",
    )
    assert main(["batch", str(manifest), "--progress", "off"]) == 2
    err = capsys.readouterr().err.strip()
    assert "variant 'v'" in err and "wind-down: rate 0.2 is out of range" in err
    assert err.count("\n") == 0 and not out.exists() and not (tmp_path / "v.wav").exists()


def test_a_manifest_writes_the_wind_down_as_text_or_a_table(tmp_path):
    (tmp_path / "s.md").write_text("Rest now.\n", encoding="utf-8")
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        'output = "{name}.wav"\n[defaults]\nscript = "s.md"\n'
        '[[variants]]\nname = "text"\nwind_down = "rate=[1, 0.8], level=-3dB, by=time"\n'
        '[[variants]]\nname = "table"\nwind_down = { rate = [1, 0.8], level = "-3dB", by = "time" }\n',
        encoding="utf-8",
    )
    text, table = expand_manifest(manifest, validate=False)
    assert parse_wind_down(table.settings.wind_down) == parse_wind_down(text.settings.wind_down)
    assert parse_wind_down(table.settings.wind_down) == WindDown(
        rate=(1.0, 0.8), level_db=(-3.0,), by="time"
    )


def test_showing_a_preset_shows_its_wind_down(tmp_path, capsys):
    preset = tmp_path / "sleepy.toml"
    preset.write_text(
        '[layers.drone]\n\n[wind-down]\nrate = [1.0, 0.8]\nlevel = "-3dB"\nby = "time"\n',
        encoding="utf-8",
    )
    assert main(["soundscapes", str(preset)]) == 0
    shown = capsys.readouterr().out
    assert "wind-down: rate 1 → 0.8 ×, level 0 → -3 dB, pauses 1 → 1 ×, by time" in shown


PHRASED = (
    "Settle in, and let your shoulders soften, slowly, gently. "
    "Notice the weight of your body, resting here, held, at ease."
)


def test_under_the_default_pace_the_voice_slows_to_its_floor_then_with_phrase_breaks(tmp_path):
    """At the default pace (135 wpm: joe near its natural floor) a wind-down to 0.75 keeps the
    voice at the floor and lengthens the pauses between phrases; the segment still lasts
    1 / 0.75 as long as at the start, as a listener hears the pace."""
    from meditation.pace import NATURAL_FLOOR

    text = f"""---
title: Phrased
lead_in: 1
tail: 2
wind-down: {{rate: 0.75}}
---
# Arrive

{PHRASED}

# Drift

{PHRASED}
"""
    _, _, timings = _render(tmp_path, text, "phrased")
    first, last = _by_scene(timings, "Arrive"), _by_scene(timings, "Drift")
    assert min(s["rate"] for s in last) >= NATURAL_FLOOR["piper:joe"]  # never stretched below
    length = lambda segs: sum(s["end"] - s["start"] for s in segs)  # noqa: E731
    assert length(last) / length(first) == pytest.approx(1 / 0.75, rel=0.08)


def test_slowed_keeps_the_rate_above_the_floor_and_fills_the_rest_with_breaks():
    from meditation.pace import NATURAL_FLOOR, Pace, slowed

    floor = NATURAL_FLOOR["piper:joe"]
    assert slowed("piper:joe", PHRASED, Pace(0.9), 0.8) == Pace(0.72)  # above the floor: rate
    low = slowed("piper:joe", PHRASED, Pace(0.7), 0.75)
    assert low.rate == floor and low.phrase_break_s > 0
    deeper = slowed("piper:joe", PHRASED, Pace(0.7), 0.6)
    assert deeper.rate == floor and deeper.phrase_break_s > low.phrase_break_s
    # No clause to pause at: the rate goes down, but never under the engines' 0.5.
    assert slowed("piper:joe", "Rest here now", Pace(0.6), 0.5) == Pace(0.5)
