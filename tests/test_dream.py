"""The default meditation, rendered once: the soundscape follows the dream's scenes.

One render of ``scripts/dream.md`` (the pyttsx3 voice keeps it fast; the
soundscape does not depend on the voice) with stems and timings is shared by
every test here. Levels are measured on the stems: each is a layer exactly as
it sits in the mix, after the mastering gain.
"""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ffmpeg import decode_errors, ebur128, ffmpeg, probe
from measure import rms_db

from meditation.cli import main

DREAM = Path(__file__).resolve().parent.parent / "scripts" / "dream.md"
LAYERS = ("drone", "river", "wind", "wings", "bell", "breath")  # breath: under each [breathe]
BEDS = ("drone", "river", "wind")  # the continuous layers; wings and bell only play cues
SILENT_DB = -60.0
# The mixer's ducking: full depth from a segment's first sample to its last;
# the attack starts 0.25 s before, the release takes 0.8 s after.
ATTACK_S, RELEASE_S = 0.25, 0.8
# Scenes crossfade over at most 10 s (dream.toml's longest fade_s): level
# comparisons inside a scene skip its first 10 s.
FADE_S = 10.0


@pytest.fixture(scope="module")
def dream(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dream")
    out, timings, stems = folder / "dream.mp3", folder / "dream.json", folder / "stems"
    code = main(
        [
            "render",
            str(DREAM),
            "--voice",
            "pyttsx3",
            "--rate",  # eSpeak at the dream's former pace: these tests are about its soundscape
            "0.8",
            "--stems",
            str(stems),
            "--timings",
            str(timings),
            "-o",
            str(out),
            "--progress",
            "off",
            "--no-cache",
        ]
    )
    assert code == 0
    audio = {}
    for name in ("voice", *LAYERS):
        audio[name], sr = sf.read(stems / f"{name}.wav", dtype="float32", always_2d=True)
        assert sr == 44100
    return {
        "mp3": out,
        "timings": json.loads(timings.read_text(encoding="utf-8")),
        "stems": audio,
        "sr": sr,
        "folder": stems,
    }


# Timings are written to 0.1 ms; a scene's edges are known to within that (plus a sample).
JSON_PRECISION_S = 0.001


def _scene(dream, name):
    return next(s for s in dream["timings"]["scenes"] if s["name"] == name)


def _slice(x, sr, a, b):
    return x[max(0, int(round(a * sr))) : max(0, int(round(b * sr)))]


def _spoken(dream):
    return [s for s in dream["timings"]["segments"] if s["end"] > s["start"]]


# -- the encoded file ---------------------------------------------------------


@pytest.mark.slow
def test_mp3_meets_loudness_and_true_peak_by_an_independent_meter(dream):
    loudness, peak = ebur128(dream["mp3"])
    assert loudness == pytest.approx(-16.0, abs=1.0)
    assert peak <= -1.0


def _decoded_duration_s(path):
    """Length of the audio as ffmpeg decodes it, all of it (not a header's estimate)."""
    result = subprocess.run(
        [ffmpeg(), "-hide_banner", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    h, m, s = re.findall(r"time=(\d+):(\d+):([\d.]+)", result.stderr)[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


@pytest.mark.slow
def test_mp3_decodes_cleanly_as_long_stereo_44k(dream):
    assert decode_errors(dream["mp3"]) == ""
    info = probe(dream["mp3"])
    assert info["sample_rate"] == 44100 and info["channels"] == "stereo"
    decoded = _decoded_duration_s(dream["mp3"])
    # MP3 adds encoder padding of a few tens of milliseconds at most.
    assert decoded == pytest.approx(dream["timings"]["duration"], abs=0.1)
    assert decoded >= 300.0, "the dream, spoken unhurried, lasts at least five minutes"


def test_mp3_header_tells_players_the_true_length(dream):
    # What a player shows (and seeks by) before decoding: for a VBR MP3 this
    # needs a Xing/Info header, else it is guessed from the first frame's bitrate.
    assert probe(dream["mp3"])["duration"] == pytest.approx(dream["timings"]["duration"], abs=0.5)


def _words(text):
    return re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))


def test_timeline_segments_cover_the_whole_dream_text(dream):
    body = DREAM.read_text(encoding="utf-8").split("---", 2)[2]
    lines = [line for line in body.splitlines() if not line.startswith("#")]
    text = re.sub(r"\[(pause|breathe)[^\]]*\]", " ", "\n".join(lines))
    segments = dream["timings"]["segments"]
    assert _words(" ".join(s["text"] for s in segments)) == _words(text)
    scenes = dream["timings"]["scenes"]
    headings = [line[2:].strip() for line in body.splitlines() if line.startswith("# ")]
    assert [s["name"] for s in scenes] == headings
    assert scenes[0]["start"] == 0 and scenes[-1]["end"] == dream["timings"]["duration"]
    assert all(a["end"] == b["start"] for a, b in zip(scenes, scenes[1:]))


def test_every_sentence_of_the_dream_is_spoken(dream):
    # A segment of zero length is text the listener never hears.
    silent = [s["text"][:50] for s in dream["timings"]["segments"] if s["end"] - s["start"] < 0.3]
    assert silent == []


def test_stems_have_the_length_of_the_output(dream):
    lengths = {name: len(x) for name, x in dream["stems"].items()}
    assert len(set(lengths.values())) == 1, lengths
    # The timings' seconds are rounded to 0.1 ms: a couple of samples.
    assert lengths["voice"] == pytest.approx(dream["timings"]["duration"] * dream["sr"], abs=3)
    assert lengths["voice"] / dream["sr"] == pytest.approx(
        _decoded_duration_s(dream["mp3"]), abs=0.1
    )
    assert sorted(p.stem for p in dream["folder"].glob("*.wav")) == sorted(("voice", *LAYERS))


# -- what plays where ---------------------------------------------------------


def test_river_is_silent_in_the_library_and_flows_in_the_valley(dream):
    sr, river = dream["sr"], dream["stems"]["river"]
    library, valley = _scene(dream, "The library"), _scene(dream, "The valley and the river")
    assert float(np.max(np.abs(_slice(river, sr, library["start"], library["end"])))) == 0.0
    steady = _slice(river, sr, valley["start"] + FADE_S, valley["end"])
    assert rms_db(steady) > -40.0  # clearly there, not a trace
    assert rms_db(_slice(river, sr, library["start"], library["end"])) < SILENT_DB


def _cue_time(dream, words):
    """When the words are spoken, estimated as the mixer places cues: evenly through the segment."""
    seg = next(s for s in dream["timings"]["segments"] if words in s["text"])
    return seg["start"] + (seg["end"] - seg["start"]) * seg["text"].index(words) / len(seg["text"])


@pytest.mark.slow
def test_the_phoenix_beats_its_wings_once_near_the_words(dream):
    sr, wings = dream["sr"], dream["stems"]["wings"]
    phoenix = _scene(dream, "The phoenix")
    at = _cue_time(dream, "single, powerful beat")
    level = np.max(np.abs(wings), axis=1)
    onset = int(np.argmax(level > 10 ** (-50 / 20))) / sr
    assert level.max() > 10 ** (-50 / 20), "the wings never sound"
    assert phoenix["start"] < onset and at - 0.5 <= onset <= at + 1.5, (onset, at)
    # The single beat is the most powerful wing sound of the track, and plainly audible.
    peak_at = int(np.argmax(level)) / sr
    assert at - 0.5 <= peak_at <= at + 2.5, (peak_at, at)
    assert 20 * np.log10(level.max()) > -20.0


def test_the_wind_blows_in_the_flight_and_not_before(dream):
    sr, wind = dream["sr"], dream["stems"]["wind"]
    flight = _scene(dream, "The flight")
    assert float(np.max(np.abs(_slice(wind, sr, 0, flight["start"] - JSON_PRECISION_S)))) == 0.0
    steady = _slice(wind, sr, flight["start"] + FADE_S, flight["end"])
    assert rms_db(steady) > -40.0
    # It is the flight's main bed: louder than the fading river and drone there.
    assert all(
        rms_db(steady)
        > rms_db(_slice(dream["stems"][n], sr, flight["start"] + FADE_S, flight["end"])) + 3
        for n in ("drone", "river")
    )


def test_each_scene_plays_exactly_the_layers_its_timings_list(dream):
    sr = dream["sr"]
    problems = []
    for scene in dream["timings"]["scenes"]:
        assert set(scene["layers"]) <= set(LAYERS)
        for name in LAYERS:
            x = _slice(dream["stems"][name], sr, scene["start"], scene["end"])
            if name in scene["layers"]:
                # Audible over some part of the scene: the loudest second.
                n = sr
                frames = x[: len(x) // n * n].reshape(-1, n, 2)
                loudest = 10 * np.log10(
                    np.max(np.mean(frames.astype(np.float64) ** 2, axis=(1, 2))) + 1e-20
                )
                if loudest <= SILENT_DB:
                    problems.append(
                        f"{scene['name']}: {name} listed but silent ({loudest:.1f} dBFS)"
                    )
            else:
                x = _slice(
                    dream["stems"][name],
                    sr,
                    scene["start"] + JSON_PRECISION_S,
                    scene["end"] - JSON_PRECISION_S,
                )
                peak = float(np.max(np.abs(x)))
                if peak != 0.0:  # silent layers are skipped by the mixer: exact zeros
                    problems.append(
                        f"{scene['name']}: {name} not listed but peaks at {20 * np.log10(peak):.1f} dBFS"
                    )
    assert problems == []


# -- the ambience makes room for the voice ------------------------------------


def _speech_and_gap_spans(dream, scene):
    """(speaking, gaps) spans inside a scene, away from ducking ramps and the scene's crossfade."""
    lo, hi = scene["start"] + FADE_S, scene["end"]
    spoken = [s for s in _spoken(dream) if s["scene"] == scene["name"]]
    speech = [(max(lo, s["start"]), min(hi, s["end"])) for s in spoken]
    gaps = []
    for a, b in zip(spoken, spoken[1:]):
        # Pauses under the mixer's bridge (1.2 s) stay ducked on purpose: not gaps.
        if b["start"] - a["end"] >= 1.2:
            gaps.append((max(lo, a["end"] + RELEASE_S + 0.2), min(hi, b["start"] - ATTACK_S - 0.1)))
    keep = lambda spans: [(a, b) for a, b in spans if b - a > 0.3]  # noqa: E731
    return keep(speech), keep(gaps)


def _bed(dream):
    return sum(dream["stems"][n].astype(np.float64) for n in BEDS)


def _level(x, sr, spans):
    return rms_db(np.concatenate([_slice(x, sr, a, b) for a, b in spans]))


@pytest.mark.slow
def test_ambience_ducks_under_the_voice_in_every_scene(dream):
    # Cue layers (a bell strike, a wing beat) are one-off events placed in
    # pauses: they would make the gaps louder for reasons of their own, so
    # the comparison is on the continuous beds.
    sr, bed = dream["sr"], _bed(dream)
    depths = {}
    for scene in dream["timings"]["scenes"]:
        speech, gaps = _speech_and_gap_spans(dream, scene)
        if sum(b - a for a, b in speech) < 2 or sum(b - a for a, b in gaps) < 1.5:
            continue
        depths[scene["name"]] = _level(bed, sr, gaps) - _level(bed, sr, speech)
    assert len(depths) >= 4, depths
    # The mixer ducks by 6 dB; a scene's few seconds of gaps measure it give
    # or take a couple of dB (the drone breathes, the river surges).
    assert float(np.mean(list(depths.values()))) >= 4.0, depths
    assert min(depths.values()) >= 2.0, depths


@pytest.mark.slow
def test_ambience_stays_ducked_through_short_pauses(dream):
    sr, bed = dream["sr"], _bed(dream)
    spoken = _spoken(dream)
    bumps = []
    for a, b in zip(spoken, spoken[1:]):
        pause = b["start"] - a["end"]
        if 0.2 <= pause < 1.0 and a["scene"] == b["scene"]:
            around = _level(bed, sr, [(a["end"] - 1.0, a["end"]), (b["start"], b["start"] + 1.0)])
            bumps.append(_level(bed, sr, [(a["end"], b["start"])]) - around)
    assert len(bumps) >= 5, bumps
    # A released duck would come up by several dB; noise alone moves short windows by ~1-2 dB.
    assert max(bumps) < 3.0 and float(np.mean(bumps)) < 1.0, bumps
