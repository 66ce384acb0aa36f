"""A new night every night: `--vary` (issue 22, part 4)."""

import datetime as dt
import json

import numpy as np
import pytest
import soundfile as sf

from meditation.cli import main
from meditation.errors import ScriptError
from meditation.script import parse_script
from meditation.settings import resolve_settings
from meditation.vary import CUE_DELAY_S, night_seed, vary_script
from meditation.voices import ENGINES

SCRIPT = """# Arriving

Settle in. [either Breathe in slowly. | Take a slow breath in. | Let the breath come in.]

[breathe 2-2 x3]

# Resting

Rest here. [either Feel the ground. | Notice the floor beneath you.]
"""

PRESET = """name = "varied"
[layers.river]
level_db = -12.0
[layers.bell]
level_db = -10.0
[scenes.default]
river = 0.0
[[cues]]
layer = "bell"
action = "strike"
at_scene = "Resting"
[[cues]]
layer = "bell"
action = "strike"
at = "start"
offset_s = 1.0
"""

NIGHTS = [f"2026-12-0{d}" for d in range(1, 8)]


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Seven nights of one script, each with its WAV, stems and timings."""
    folder = tmp_path_factory.mktemp("nights")
    (folder / "s.md").write_text(SCRIPT)
    (folder / "p.toml").write_text(PRESET)
    made = []
    for night in NIGHTS:
        out = folder / f"{night}.wav"
        stems, timings = folder / f"{night}-stems", folder / f"{night}.json"
        args = _args(folder) + ["--vary", night, "-o", str(out)]
        assert main([*args, "--stems", str(stems), "--timings", str(timings)]) == 0
        made.append((out, stems, json.loads(timings.read_text())))
    return folder, made


def _args(folder):
    return [
        "render",
        str(folder / "s.md"),
        "--soundscape",
        str(folder / "p.toml"),
        "--duration",
        "50s",
        "--sample-rate",
        "16000",
        "--progress",
        "off",
    ]


def test_seven_nights_differ_in_ambience_events_lines_and_breaths(nights):
    _, made = nights
    rivers = [sf.read(stems / "river.wav", dtype="float32")[0] for _, stems, _ in made]
    for i in range(len(rivers)):
        for j in range(i):
            assert not np.array_equal(rivers[i], rivers[j]), (i, j)
    bells = [tuple(t["layers"]["bell"]["cues"]) for _, _, t in made]
    assert len(set(bells)) == 7, bells
    lines = [tuple(s["text"] for s in t["segments"]) for _, _, t in made]
    assert len(set(lines)) >= 3, lines
    cycles = [len(t["breaths"]) // 2 for _, _, t in made]
    assert set(cycles) <= {2, 3, 4} and len(set(cycles)) >= 2, cycles


def test_every_night_keeps_its_chapters_and_length_and_cues_stay_in_their_scene(nights):
    _, made = nights
    for out, _, timings in made:
        assert [s["name"] for s in timings["scenes"]] == ["Arriving", "Resting"]
        # --duration pins every night's length (pauses fitted, to a millisecond as ever).
        assert abs(sf.info(out).frames - 50 * 16000) <= 16
        resting = timings["scenes"][1]["start"]
        scene_bell, start_bell = timings["layers"]["bell"]["cues"]
        assert resting <= scene_bell <= resting + CUE_DELAY_S + 0.01
        assert 1.0 <= start_bell <= 1.0 + CUE_DELAY_S + 0.01
        # Captions and timings follow what is said: a chosen line, never the markup.
        texts = [s["text"] for s in timings["segments"]]
        assert all("|" not in t and "either" not in t for t in texts)


def test_each_night_is_made_again_bit_for_bit_from_what_its_timings_record(nights):
    folder, made = nights
    for k, (out, _, timings) in enumerate(made):
        assert timings["vary"] == "seed"
        assert timings["seed"] == night_seed(1, dt.date.fromisoformat(NIGHTS[k]))
        again = folder / f"again-{k}.wav"
        args = _args(folder) + ["--vary", timings["vary"], "--seed", str(timings["seed"])]
        assert main([*args, "-o", str(again)]) == 0
        assert again.read_bytes() == out.read_bytes(), NIGHTS[k]


def test_without_vary_the_first_line_and_the_written_count_play():
    script = vary_script(parse_script(SCRIPT), seed=1, vary=False)
    paragraphs = [i.text for s in script.scenes for i in s.items if hasattr(i, "text")]
    assert paragraphs == ["Settle in. Breathe in slowly.", "Rest here. Feel the ground."]
    (exercise,) = [i for s in script.scenes for i in s.items if getattr(i, "phases", ())]
    assert exercise.phases == (("in", 2.0), ("out", 2.0)) * 3 and exercise.seconds == 12.0


def test_a_chosen_line_joins_the_punctuation_around_it_in_speech_and_captions(tmp_path):
    # Each [either …] was a piece of its own, joined to the text around it with a space: the
    # voice was given, and the captions showed, "Breathe in slowly ." and "( the ground )".
    script = tmp_path / "s.md"
    script.write_text(
        "[either Breathe in slowly | Take a slow breath in]. Feel ([either the ground | the floor]).\n"
    )
    out, captions, timings = tmp_path / "o.wav", tmp_path / "o.vtt", tmp_path / "o.json"
    args = ["render", str(script), "--voice", "pyttsx3", "--soundscape", "none"]
    args += ["--sample-rate", "16000", "--captions", str(captions), "--timings", str(timings)]
    assert main([*args, "-o", str(out)]) == 0
    said = [s["text"] for s in json.loads(timings.read_text())["segments"]]
    assert said == ["Breathe in slowly.", "Feel (the ground)."]
    cues = [line for line in captions.read_text().splitlines()[1:] if line and "-->" not in line]
    assert cues == said
    assert np.sqrt(np.mean(sf.read(out)[0] ** 2)) > 0.01  # spoken, not silence


def test_a_pronunciation_fix_inside_a_chosen_line_is_said_and_captioned_as_written(
    tmp_path, monkeypatch
):
    # The bar of {Metta|MET-tah} split the [either …] into three lines: "{Metta" was spoken.
    engine = ENGINES["pyttsx3"]
    heard, real = [], engine.synthesize

    def spy(self, text, *, rate, seed):  # the real engine speaks; we only note what it was given
        heard.append(text)
        return real(self, text, rate=rate, seed=seed)

    monkeypatch.setattr(engine, "synthesize", spy)
    script = tmp_path / "s.md"
    script.write_text("[either We chant {Metta|MET-tah} | We rest quietly].\n")
    out, captions = tmp_path / "o.wav", tmp_path / "o.vtt"
    args = ["render", str(script), "--voice", "pyttsx3", "--soundscape", "none", "--no-cache"]
    assert main([*args, "--sample-rate", "16000", "--captions", str(captions), "-o", str(out)]) == 0
    assert heard == ["We chant met-tah."]
    assert "We chant Metta." in captions.read_text().splitlines()


def test_nightly_is_todays_night():
    settings = resolve_settings({"vary": "nightly", "seed": 5})
    assert (settings.vary, settings.seed) == ("seed", night_seed(5, dt.date.today()))


@pytest.mark.parametrize(
    "text, says",
    [
        ("Hello. [either Just one.]", "[either] needs two or more lines"),
        ("Hello. [either A | ]", "[either] needs two or more lines"),
        ("Hello. [either | B]", "[either] needs two or more lines"),
    ],
)
def test_a_bad_either_is_refused_at_its_place(text, says):
    with pytest.raises(ScriptError) as caught:
        parse_script(text, path="s.md")
    assert says in str(caught.value) and "s.md:1:8" in str(caught.value)


@pytest.mark.parametrize(
    "value, says",
    [
        ("tomorrow", "vary must be nightly, a night's date (YYYY-MM-DD), seed or none"),
        ("2026-02-30", "vary '2026-02-30' is not a date"),
    ],
)
def test_a_bad_vary_is_one_line_exit_2(tmp_path, capsys, value, says):
    out = tmp_path / "o.mp3"
    assert main(["render", "--vary", value, "-o", str(out), "--progress", "off"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err
    assert not out.exists()


def test_a_batch_matrix_over_nights_records_each_nights_seed_and_makes_it_again(tmp_path):
    (tmp_path / "s.md").write_text(SCRIPT)
    (tmp_path / "m.toml").write_text(
        'output = "{script}-{vary}.wav"\n'
        '[defaults]\nscript = "s.md"\nduration = "40s"\nsample_rate = 16000\n'
        'soundscape = "stream"\n'
        '[matrix]\nvary = ["2026-12-01", "2026-12-02"]\n'
    )
    assert main(["batch", str(tmp_path / "m.toml"), "-j", "1", "--progress", "off"]) == 0
    seeds = []
    for night in ("2026-12-01", "2026-12-02"):
        sidecar = json.loads((tmp_path / f"s-{night}.json").read_text())
        assert sidecar["settings"]["vary"] == "seed"
        seeds.append(sidecar["seed"])
        again = tmp_path / f"again-{night}.wav"
        args = ["render", str(tmp_path / "s.md"), "--soundscape", "stream", "--duration", "40s"]
        args += ["--sample-rate", "16000", "--vary", "seed", "--seed", str(sidecar["seed"])]
        assert main([*args, "-o", str(again), "--progress", "off"]) == 0
        assert again.read_bytes() == (tmp_path / f"s-{night}.wav").read_bytes()
    assert seeds[0] != seeds[1]


def test_ambient_nights_differ_and_each_is_made_again_from_its_seed(tmp_path):
    common = ["ambient", "--soundscape", "stream", "--duration", "20s", "--sample-rate", "8000"]
    common += ["--progress", "off"]
    one, two = tmp_path / "one.wav", tmp_path / "two.wav"
    assert main([*common, "--vary", "2026-12-01", "-o", str(one)]) == 0
    assert main([*common, "--vary", "2026-12-02", "-o", str(two)]) == 0
    assert one.read_bytes() != two.read_bytes()
    again = tmp_path / "again.wav"
    seed = night_seed(1, dt.date(2026, 12, 1))
    assert main([*common, "--vary", "seed", "--seed", str(seed), "-o", str(again)]) == 0
    assert again.read_bytes() == one.read_bytes()
