"""Guided breathing: the breath layer, the phases on the track, and the spoken cues."""

import json

import numpy as np
import pytest
import soundfile as sf
from measure import rms_db

from meditation.cli import main
from meditation.errors import SoundscapeError
from meditation.soundscape.layers import Cue
from meditation.soundscape.layers.breath import BreathLayer, breath, breath_cues
from meditation.timeline import Breath

SR = 44100


def _exercise(pattern, cycles, start_s=1.0):
    """Breath phases of ``cycles`` cycles of ``pattern`` (name, seconds) from ``start_s``."""
    breaths, at = [], int(start_s * SR)
    for _ in range(cycles):
        for phase, seconds in pattern:
            breaths.append(Breath(at, phase, int(seconds * SR)))
            at += int(seconds * SR)
    return breaths


def _quarters_db(audio, b):
    """RMS in dB of each quarter of a phase."""
    q = b.length // 4
    return [rms_db(audio[b.start + k * q : b.start + (k + 1) * q]) for k in range(4)]


def _assert_paces(audio, breaths, *, hold_tolerance_db=1.0):
    """The swell rises through every inhale, falls through every exhale, and holds."""
    for b in breaths:
        q = _quarters_db(audio, b)
        if b.phase == "in":
            assert all(x < y for x, y in zip(q, q[1:])), (b, q)
            assert q[-1] - q[0] > 10, (b, q)
        elif b.phase == "out":
            assert all(x > y for x, y in zip(q, q[1:])), (b, q)
            assert q[0] - q[-1] > 10, (b, q)
        elif q[0] > -60:  # a held full breath stays put (a hold after an exhale is silence)
            assert max(q) - min(q) < hold_tolerance_db, (b, q)


@pytest.mark.parametrize("sound", ["noise", "tone"])
def test_the_swell_rises_in_each_inhale_falls_in_each_exhale_and_is_silent_outside(sound, rng):
    breaths = _exercise([("in", 4), ("hold", 7), ("out", 8)], 2) + _exercise(
        [("in", 4), ("hold", 4), ("out", 4), ("hold", 4)], 1, start_s=45
    )
    n = breaths[-1].end + 2 * SR
    audio = breath(n, sample_rate=SR, rng=rng, cues=breath_cues(breaths, SR), sound=sound)
    _assert_paces(audio, breaths)
    gap = slice(breaths[5].end, breaths[6].start)  # between the two exercises
    assert np.max(np.abs(audio[: breaths[0].start])) == 0 and np.max(np.abs(audio[gap])) == 0
    assert np.max(np.abs(audio[breaths[-1].end :])) == 0
    # Full breath at the layer's nominal level; soft enough to sit under a voice.
    held = audio[breaths[1].start : breaths[1].end]
    assert rms_db(held) == pytest.approx(-20.0, abs=1.0)


def test_the_noise_is_a_soft_band_with_no_hiss(rng):
    from measure import band_energy_db

    breaths = _exercise([("in", 2), ("hold", 6), ("out", 2)], 1, start_s=0)
    audio = breath(breaths[-1].end, sample_rate=SR, rng=rng, cues=breath_cues(breaths, SR))
    held = audio[breaths[1].start : breaths[1].end].mean(axis=1)
    assert band_energy_db(held, SR, 150, 900) - band_energy_db(held, SR, 4000, 16000) > 25


def test_bad_parameters_and_cues_are_refused():
    with pytest.raises(SoundscapeError, match="sound"):
        BreathLayer.make_params({"sound": "whale"})
    with pytest.raises(SoundscapeError, match="duration_s"):
        BreathLayer(sample_rate=SR, rng=np.random.default_rng(0), cues=[Cue(1.0, "in")])


# --- in a render: timings, stems, spoken cues ---

SCRIPT = """# Settle

Breathe with me. [breathe 2-1-3 x2 cues] Good.

# Rest

Rest now.
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("breath")
    script = folder / "b.md"
    script.write_text(SCRIPT, encoding="utf-8")
    out, timings, stems = folder / "out.wav", folder / "t.json", folder / "stems"
    code = main(
        [
            "render",
            str(script),
            "-o",
            str(out),
            "--voice",
            "pyttsx3",
            "--timings",
            str(timings),
            "--stems",
            str(stems),
            "--lead-in",
            "2",
            "--tail",
            "3",
            "--progress",
            "off",
        ]
    )
    assert code == 0
    return json.loads(timings.read_text()), stems, script


@pytest.mark.slow
def test_the_timings_list_the_phases_and_they_add_up_exactly(rendered):
    timings, _, _ = rendered
    breaths = timings["breaths"]
    assert [b["phase"] for b in breaths] == ["in", "hold", "out"] * 2
    assert [b["duration"] for b in breaths] == [2.0, 1.0, 3.0] * 2
    for a, b in zip(breaths, breaths[1:]):
        assert round(b["start"] * SR) == round(a["start"] * SR) + round(a["duration"] * SR)
    assert breaths[-1]["start"] + breaths[-1]["duration"] - breaths[0]["start"] == pytest.approx(
        12.0, abs=1e-6
    )


def test_the_breath_stem_paces_the_phases_though_the_preset_does_not_list_it(rendered):
    timings, stems, _ = rendered
    audio, sr = sf.read(stems / "breath.wav", dtype="float32")
    breaths = [
        Breath(round(b["start"] * sr), b["phase"], round(b["duration"] * sr))
        for b in timings["breaths"]
    ]
    _assert_paces(audio, breaths)
    assert (
        np.max(np.abs(audio[: breaths[0].start])) == 0
        and np.max(np.abs(audio[breaths[-1].end :])) == 0
    )
    scene = timings["scenes"][0]
    assert "breath" in scene["layers"] and "breath" not in timings["scenes"][1]["layers"]


def test_spoken_cues_start_within_50_ms_of_their_phase(rendered):
    timings, stems, _ = rendered
    cues = [s for s in timings["segments"] if s["text"] in ("In", "Hold", "Out")]
    assert [c["text"] for c in cues] == ["In", "Hold", "Out"] * 2
    voice, sr = sf.read(stems / "voice.wav", dtype="float32")
    voice = np.abs(voice.mean(axis=1))
    for cue, phase in zip(cues, timings["breaths"]):
        assert abs(cue["start"] - phase["start"]) <= 0.05
        # Measured: the first sample within 30 dB of the cue word's own peak.
        lo, hi = int((phase["start"] - 0.3) * sr), int(cue["end"] * sr)
        window = voice[lo:hi]
        onset = (lo + int(np.argmax(window > window.max() * 10 ** (-30 / 20)))) / sr
        assert abs(onset - phase["start"]) <= 0.05, (cue, phase, onset)


def test_cues_are_cached_like_all_speech(rendered):
    from meditation.cache import SpeechCache
    from meditation.voices import resolve_voice

    voice = resolve_voice("pyttsx3")
    cache = SpeechCache()
    for word in ("In", "Hold", "Out"):
        assert cache.get(SpeechCache.key(voice, 0.9, word, SR)) is not None


@pytest.mark.slow
def test_layers_can_leave_the_breath_out(rendered, tmp_path):
    _, _, script = rendered
    stems = tmp_path / "stems"
    code = main(
        [
            "render",
            str(script),
            "-o",
            str(tmp_path / "o.wav"),
            "--voice",
            "pyttsx3",
            "--layers",
            "drone",
            "--stems",
            str(stems),
            "--progress",
            "off",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in stems.iterdir()) == ["drone.wav", "voice.wav"]


def test_a_single_breathe_is_one_paced_breath_where_it_was_silence(tmp_path):
    # "[breathe]" was 6 s of silence with no breath sound; it keeps its timing, and the breath
    # layer now paces one in-out breath over it.
    script = tmp_path / "one.md"
    script.write_text("Sit down. [breathe] Rest now.\n", encoding="utf-8")
    out, timings, stems = tmp_path / "o.wav", tmp_path / "t.json", tmp_path / "stems"
    code = main(
        [str(script), "-o", str(out), "--voice", "pyttsx3"]
        + ["--timings", str(timings), "--stems", str(stems), "--progress", "off"]
        + ["--lead-in", "1", "--tail", "2"]
    )
    assert code == 0
    data = json.loads(timings.read_text())
    first, second = data["segments"]
    assert second["start"] - first["end"] == pytest.approx(6.0, abs=1e-3)  # the written 6 s
    breaths = data["breaths"]
    assert [b["phase"] for b in breaths] == ["in", "out"]
    assert breaths[0]["start"] + breaths[0]["duration"] == pytest.approx(breaths[1]["start"])
    assert breaths[0]["start"] == pytest.approx(first["end"], abs=1e-3)
    assert breaths[1]["start"] + breaths[1]["duration"] == pytest.approx(second["start"], abs=1e-3)
    audio, sr = sf.read(stems / "breath.wav", dtype="float32")
    placed = [
        Breath(round(b["start"] * sr), b["phase"], round(b["duration"] * sr)) for b in breaths
    ]
    _assert_paces(audio, placed)
    assert np.max(np.abs(audio[: placed[0].start])) == 0


def test_the_cue_words_can_be_chosen_per_exercise(tmp_path):
    # They were fixed to In/Hold/Out.
    script = tmp_path / "words.md"
    script.write_text(
        "Ready. [breathe 2-1-3 x2 cues=Breathe in, Stay,Let it go] Good.\n", encoding="utf-8"
    )
    out, timings, stems = tmp_path / "o.wav", tmp_path / "t.json", tmp_path / "stems"
    code = main(
        [str(script), "-o", str(out), "--voice", "pyttsx3", "--progress", "off"]
        + ["--timings", str(timings), "--stems", str(stems)]
    )
    assert code == 0
    data = json.loads(timings.read_text())
    said = [s["text"] for s in data["segments"]]
    assert said == ["Ready."] + ["Breathe in", "Stay", "Let it go"] * 2 + ["Good."]
    # Each is spoken on its phase: the voice stem has speech within 50 ms of each phase start.
    voice, sr = sf.read(stems / "voice.wav", dtype="float32")
    for b in data["breaths"]:
        start = round(b["start"] * sr)
        assert rms_db(voice[start : start + sr // 2]) > -50, b


@pytest.mark.parametrize(
    "directive, col, fragment",
    [
        ("[breathe 4-6 cues=In]", 14, "cues= needs 2 words"),
        ("[breathe 4-7-8 cues=In,Out]", 16, "one for each of in, hold, out"),
        ("[breathe 4-6 cues=In,]", 14, "cues= needs 2 words"),
        ("[breathe 4-6 cues cues=In,Out]", 19, "not both"),
        ("[breathe cues=In,Out]", 10, "needs a pattern"),
    ],
)
def test_bad_cue_words_are_refused_at_their_place(directive, col, fragment):
    from meditation.errors import ScriptError
    from meditation.script import parse_script

    with pytest.raises(ScriptError) as info:
        parse_script(directive, path="w.md")
    assert str(info.value).startswith(f"w.md:1:{col}: ") and fragment in str(info.value)


def test_breath_cues_in_front_matter_set_the_words_of_every_exercise(tmp_path):
    script = tmp_path / "fm.md"
    script.write_text(
        "---\nbreath_cues: Breathe in, Rest, Let go\n---\n"
        "Ready. [breathe 2-1-2 cues] Again. [breathe 2-2 cues=Up,Down] Good.\n",
        encoding="utf-8",
    )
    out, timings = tmp_path / "o.wav", tmp_path / "t.json"
    code = main(
        [str(script), "-o", str(out), "--voice", "pyttsx3", "--progress", "off"]
        + ["--timings", str(timings)]
    )
    assert code == 0
    said = [s["text"] for s in json.loads(timings.read_text())["segments"]]
    # The exercise's own cues= wins over the front matter.
    assert said == ["Ready.", "Breathe in", "Rest", "Let go", "Again.", "Up", "Down", "Good."]


@pytest.mark.parametrize("value", ["In,Out", "In,,Out", "In,Hold,Out,More", "...,Hold,Out"])
def test_bad_breath_cues_are_refused_at_their_front_matter_line(tmp_path, capsys, value):
    script = tmp_path / "bad.md"
    script.write_text(f"---\ntitle: T\nbreath_cues: {value}\n---\nHello.\n", encoding="utf-8")
    out = tmp_path / "o.wav"
    assert main([str(script), "-o", str(out), "--voice", "pyttsx3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{script}:3:1: breath_cues" in err, err
    assert not out.exists()
    # And on the command line.
    good = tmp_path / "good.md"
    good.write_text("Hello.\n", encoding="utf-8")
    assert main([str(good), "-o", str(out), "--breath-cues", value]) == 2
    assert "breath_cues" in capsys.readouterr().err and not out.exists()
