"""The soundscape in short renders: presets, stems, determinism, ducking, chunking."""

import json

import numpy as np
import pytest
import soundfile as sf
from ffmpeg import ebur128
from measure import rms_db

from meditation.cli import main
from meditation.mix import CHUNK
from meditation.soundscape import AmbienceStream, plan_ambience
from meditation.timeline import SceneSpan, Segment, Timeline

SCENES = """---
title: Soundscape test
---
# The library

Breathe in slowly, and feel the floor beneath you, the weight of your hands. [pause 3s] And let it go.

# The phoenix

The phoenix spreads its radiant wings, and with a single, powerful beat, lifts us into the air.
"""


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _render(tmp_path, script, out_name, *extra, voice="pyttsx3"):
    out = tmp_path / out_name
    timings = out.with_suffix(".json")
    args = [
        "render",
        str(script),
        "-o",
        str(out),
        "--timings",
        str(timings),
        "--voice",
        voice,
        "--progress",
        "off",
        "--no-cache",
        *extra,
    ]
    assert main(args) == 0
    return out, json.loads(timings.read_text(encoding="utf-8"))


def _stems(folder):
    return {
        p.stem: sf.read(p, dtype="float64", always_2d=True)[0] for p in sorted(folder.glob("*.wav"))
    }


# -- stems and loudness -------------------------------------------------------


@pytest.mark.slow
def test_stems_sum_to_the_mix_and_a_loudness_target_is_met(tmp_path):
    script = _write(tmp_path / "s.md", SCENES)
    out, timings = _render(
        tmp_path,
        script,
        "out.wav",
        "--soundscape",
        "dream",
        "--stems",
        str(tmp_path / "stems"),
        "--loudness",
        "-20",
    )
    mix, sr = sf.read(out, dtype="float64", always_2d=True)
    stems = _stems(tmp_path / "stems")
    assert {"voice", "drone", "river", "wings", "bell"} <= set(stems)
    assert {len(x) for x in stems.values()} == {len(mix)}
    assert len(mix) == pytest.approx(timings["duration"] * sr, abs=3)  # timings round to 0.1 ms
    total = sum(stems.values())
    # Where the limiter has nothing to do (the sum stays well under the
    # ceiling), the output is the stems' sum: same gain, same alignment.
    block = sr // 10
    n = len(mix) // block * block
    quiet = np.max(np.abs(total[:n]).reshape(-1, block * 2), axis=1) < 0.5
    assert quiet.mean() > 0.8
    diff = np.abs(mix[:n] - total[:n]).reshape(-1, block * 2).max(axis=1)
    assert float(diff[quiet].max()) < 1e-4  # 24-bit stems: rounding is ~1e-7
    # And the loudness target holds by an independent meter.
    loudness, peak = ebur128(out)
    assert loudness == pytest.approx(-20.0, abs=1.0)
    assert peak <= -1.0


# -- determinism ---------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """The same short script rendered with seeds 5, 5 again, 5 with stems, and 6.

    Piper speaks reproducibly (pyttsx3 may not); the ambience (drone, bell,
    river, wing cues) comes from the seed.
    """
    tmp_path = tmp_path_factory.mktemp("seeded")
    script = _write(tmp_path / "s.md", SCENES)
    common = ("--soundscape", "dream", "--lead-in", "2", "--tail", "4")
    runs = {}
    for name, extra in {
        "a": ("--seed", "5"),
        "b": ("--seed", "5"),
        "stems": ("--seed", "5", "--stems", str(tmp_path / "stems")),
        "c": ("--seed", "6"),
    }.items():
        runs[name] = _render(tmp_path, script, f"{name}.wav", *common, *extra, voice="piper:joe")
    return runs


@pytest.mark.slow
def test_same_seed_gives_identical_wav_bytes_and_another_seed_another_ambience(seeded):
    (a, timings), (b, _), (c, _) = seeded["a"], seeded["b"], seeded["c"]
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    # In the pauses only the ambience sounds: same kind of sound, same level, another waveform.
    x, sr = sf.read(a, dtype="float64")
    y, _ = sf.read(c, dtype="float64")
    segs = timings["segments"]
    gaps = [
        (p["end"] + 1.0, q["start"] - 0.3)
        for p, q in zip(segs, segs[1:])
        if q["start"] - p["end"] > 2.0
    ]
    assert gaps
    x = np.concatenate([x[int(g0 * sr) : int(g1 * sr), 0] for g0, g1 in gaps])
    y = np.concatenate([y[int(g0 * sr) : int(g1 * sr), 0] for g0, g1 in gaps])
    assert rms_db(x) > -50 and rms_db(x) == pytest.approx(rms_db(y), abs=3.0)
    corr = float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)))
    assert abs(corr) < 0.5, corr


def test_asking_for_stems_does_not_change_the_mix(seeded):
    # Same inputs, same bytes: writing stems must not alter the rendered file.
    assert seeded["stems"][0].read_bytes() == seeded["a"][0].read_bytes()


# -- a script without scenes --------------------------------------------------


@pytest.mark.slow
def test_a_script_without_scenes_gets_the_calm_default_bed(tmp_path):
    script = _write(tmp_path / "plain.txt", "Breathe in slowly.\n\nAnd let it go, all of it.\n")
    out, timings = _render(tmp_path, script, "plain.wav", "--stems", str(tmp_path / "stems"))
    from meditation.soundscape import load_preset

    default = load_preset("default")
    assert [s["layers"] for s in timings["scenes"]] == [
        sorted(default.layers, key=list(default.layers).index)
    ]
    mix, sr = sf.read(out, dtype="float64", always_2d=True)
    segs = timings["segments"]
    gap = mix[int((segs[0]["end"] + 1.0) * sr) : int((segs[1]["start"] - 0.3) * sr)]
    assert len(gap) > sr
    assert rms_db(gap) > -45.0  # a bed is playing between the sentences...
    stems = _stems(tmp_path / "stems")
    voice = rms_db(mix[int(segs[0]["start"] * sr) : int(segs[0]["end"] * sr)])
    assert rms_db(gap) < voice - 6.0  # ...calm, well under the voice
    for name in default.layers:
        assert rms_db(stems[name]) > -50.0, name


# -- ducking without pumping ---------------------------------------------------


def _gain_db(stem, raw, sr, a, b):
    """The gain the mixer applied to a layer over [a, b) s: its stem against the bare layer."""
    x, y = stem[int(a * sr) : int(b * sr)], raw[int(a * sr) : int(b * sr)]
    return float(10 * np.log10(np.sum(x * x) / np.sum(y.astype(np.float64) ** 2)))


@pytest.mark.slow
def test_ambience_stays_ducked_through_short_pauses_and_comes_up_in_long_ones(tmp_path):
    # --pause-scale 0.5 makes the pauses between sentences 0.9 s (just under a
    # second): the bed must stay ducked through them. The written 8 s pause
    # (4 s once scaled) is a real rest: the bed comes back up there.
    text = "Breathe in. Slowly. Gently. Fully. [pause 8s] Let the breath go. Feel the weight. The warmth.\n"
    script = _write(tmp_path / "p.txt", text)
    _, timings = _render(
        tmp_path,
        script,
        "p.wav",
        "--soundscape",
        "drone",
        "--layers",
        "drone",
        "--seed",
        "4",
        "--pause-scale",
        "0.5",
        "--stems",
        str(tmp_path / "stems"),
    )
    drone = _stems(tmp_path / "stems")["drone"]
    sr = 44100
    # The bare drone: one layer at a constant level, so the stem divided by it
    # is exactly the gain the mix applied (mastering gain, fades, ducking).
    bare = Timeline(sr, len(drone), (), (SceneSpan("", 0, len(drone)),))
    raw = _render_in_chunks(
        plan_ambience("drone", script=None, timeline=bare, seed=4, only=["drone"]), [CHUNK]
    )["drone"]
    segs = [s for s in timings["segments"] if s["end"] > s["start"]]
    speaking = [_gain_db(drone, raw, sr, s["start"], s["end"]) for s in segs]
    assert max(speaking) - min(speaking) < 0.2, speaking  # one ducked level
    ducked = float(np.mean(speaking))
    short, long = [], []
    for a, b in zip(segs, segs[1:]):
        pause = b["start"] - a["end"]
        if pause < 1.0:
            short.append(_gain_db(drone, raw, sr, a["end"], b["start"]) - ducked)
        elif pause > 2.5:
            long.append(_gain_db(drone, raw, sr, a["end"] + 1.0, b["start"] - 0.3) - ducked)
    assert len(short) >= 4 and long, (short, long)
    assert max(short) < 0.5, short  # no pumping between sentences said in one breath
    assert min(long) > 3.0, long  # but the bed does come back up in a real pause


# -- preset validation ---------------------------------------------------------

GOOD_PRESET = """name = "mine"
description = "test"
[layers.river]
level_db = -12.0
[layers.bell]
level_db = -12.0
[scenes.default]
river = 0.0
"""

BAD_PRESETS = {
    "unknown layer": (GOOD_PRESET + "[layers.hail]\nlevel_db = -10.0\n", "unknown layer 'hail'"),
    "unknown parameter": (
        GOOD_PRESET.replace(
            "level_db = -12.0\n[layers.bell]", "level_db = -12.0\nflwo = 0.5\n[layers.bell]"
        ),
        "no parameter 'flwo'",
    ),
    "level out of range": (
        GOOD_PRESET.replace("level_db = -12.0\n[layers.bell]", "level_db = 40.0\n[layers.bell]"),
        "layers.river.level_db 40 is out of range (-80 to 12)",
    ),
    "unknown cue action": (
        GOOD_PRESET + '[[cues]]\nlayer = "bell"\naction = "ring"\nat = "start"\n',
        "no cue 'ring'",
    ),
    "cue without anchor": (
        GOOD_PRESET + '[[cues]]\nlayer = "bell"\naction = "strike"\n',
        "give exactly one of at_text, at_scene, at",
    ),
    "cue on a missing layer": (
        GOOD_PRESET + '[[cues]]\nlayer = "wings"\naction = "beat"\nat = "start"\n',
        "'wings' is not in [layers]",
    ),
    "not TOML": (GOOD_PRESET + "[scenes.calm\n", "mine.toml:9:13: soundscape is not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_PRESETS))
@pytest.mark.parametrize("command", ["render", "ambient"])
def test_a_bad_user_preset_is_refused_with_one_line_and_no_output(case, command, tmp_path, capsys):
    text, expected = BAD_PRESETS[case]
    preset = _write(tmp_path / "mine.toml", text)
    script = _write(tmp_path / "s.md", "# One\n\nBreathe in.\n")
    out = tmp_path / "out.wav"
    before = set(tmp_path.rglob("*"))
    args = [command, "--soundscape", str(preset), "-o", str(out), "--progress", "off"]
    args += (
        [str(script), "--voice", "pyttsx3", "--no-cache"]
        if command == "render"
        else ["--duration", "10s"]
    )
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("meditation: error: "), err
    assert str(preset) in err and expected in err, err
    assert set(tmp_path.rglob("*")) == before


def test_the_good_preset_of_the_validation_cases_is_accepted(tmp_path):
    # So the refusals above are about the one broken thing each adds.
    preset = _write(tmp_path / "mine.toml", GOOD_PRESET)
    assert (
        main(
            [
                "ambient",
                "--soundscape",
                str(preset),
                "--duration",
                "3s",
                "-o",
                str(tmp_path / "ok.wav"),
                "--progress",
                "off",
            ]
        )
        == 0
    )
    assert (tmp_path / "ok.wav").stat().st_size > 0


# -- chunk independence --------------------------------------------------------


def _timeline(sr=44100, seconds=60):
    names = [
        "The library",
        "The valley and the river",
        "The phoenix",
        "The flight",
        "The awakening",
    ]
    length = seconds * sr
    bounds = np.linspace(0, length, len(names) + 1).astype(int)
    scenes = tuple(SceneSpan(n, int(a), int(b)) for n, a, b in zip(names, bounds, bounds[1:]))
    text = "The phoenix spreads its radiant wings, and with a single, powerful beat, lifts us into the air."
    segments = (Segment(text, "The phoenix", int(bounds[2] + 2 * sr), 5 * sr),)
    return Timeline(sr, length, segments, scenes)


def _render_in_chunks(plan, sizes):
    ambience = AmbienceStream(plan)
    parts = {name: [] for name in ambience.names}
    pos, i = 0, 0
    while pos < plan.timeline.length:
        n = min(sizes[i % len(sizes)], plan.timeline.length - pos)
        rendered = ambience.render(n)
        for name in ambience.names:  # a layer left out of a chunk is silent there
            parts[name].append(rendered.get(name, np.zeros((n, 2), dtype=np.float32)))
        pos, i = pos + n, i + 1
    return {name: np.concatenate(p) for name, p in parts.items()}


@pytest.mark.slow
def test_ambience_is_the_same_in_any_chunk_size():
    # The mixer streams in fixed CHUNKs, but AmbienceStream decides what to skip on
    # its own block grid, so other sizes (multiples of CHUNK, odd sizes, one
    # call for everything) must give the very same samples.
    plan = plan_ambience("dream", script=None, timeline=_timeline(), seed=3)
    sounding = {name for scene in plan.timeline.scenes for name in scene.layers}
    assert {
        "drone",
        "river",
        "wind",
        "wings",
        "bell",
    } <= sounding  # every layer plays and is skipped somewhere
    reference = _render_in_chunks(plan, [CHUNK])
    assert all(rms_db(x) > -60 for x in reference.values())
    for sizes in ([2 * CHUNK], [CHUNK, 3 * CHUNK], [1000], [44100, 7], [plan.timeline.length]):
        other = _render_in_chunks(plan, sizes)
        for name, audio in reference.items():
            assert np.array_equal(other[name], audio), (sizes, name)


def test_two_builds_of_a_plan_render_identical_audio():
    plan = plan_ambience("dream", script=None, timeline=_timeline(seconds=30), seed=9)
    a, b = _render_in_chunks(plan, [CHUNK]), _render_in_chunks(plan, [CHUNK])
    assert all(np.array_equal(a[n], b[n]) for n in a)
