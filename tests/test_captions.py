"""Captions: cues inside the speech, readable, in order, and files that players and ffmpeg read."""

import numpy as np
import pytest
import soundfile as sf
from ffmpeg import decode_errors
from measure import peak_db, rms_db
from quick import quick_render

from meditation.captions import MAX_LINE_CHARS, format_captions, plan_cues, split_text
from meditation.cli import main
from meditation.timeline import SceneSpan, Segment, Timeline


def read_cues(path) -> list[tuple[float, float, str]]:
    """(start s, end s, text) of every cue, parsed by the caption libraries themselves."""
    if path.suffix == ".vtt":
        import webvtt

        return [(_seconds(c.start), _seconds(c.end), c.text) for c in webvtt.read(str(path))]
    import srt

    return [
        (c.start.total_seconds(), c.end.total_seconds(), c.content)
        for c in srt.parse(path.read_text(encoding="utf-8"))
    ]


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@pytest.fixture(scope="module")
def dream(dream):
    render = dream  # the shared publication (conftest), with its voice stem and captions read
    voice, sr = sf.read(render["stems"] / "voice.wav", dtype="float32", always_2d=True)
    return {**render, "voice": voice.mean(axis=1), "sr": sr, "cues": read_cues(render["vtt"])}


def _segment_of(cue, segments):
    start, end, _ = cue
    return next(
        (s for s in segments if s["start"] - 0.001 <= start and end <= s["end"] + 0.001), None
    )


@pytest.mark.slow
def test_every_dream_cue_lies_inside_a_spoken_segment_in_reading_order_without_overlap(dream):
    segments = [s for s in dream["timings_data"]["segments"] if s["end"] > s["start"]]
    cues = dream["cues"]
    assert len(cues) >= len(segments)
    for cue in cues:
        assert _segment_of(cue, segments) is not None, cue
    for (a0, a1, _), (b0, b1, _) in zip(cues, cues[1:]):
        assert a0 < a1 <= b0 < b1
    spoken = " ".join(" ".join(s["text"].split()) for s in segments)
    shown = " ".join(" ".join(text.split()) for _, _, text in cues)
    assert shown == spoken  # every word, once, in order, without markup


def test_every_dream_cue_has_at_most_two_lines_of_42_characters(dream):
    for _, _, text in dream["cues"]:
        lines = text.split("\n")
        assert 1 <= len(lines) <= 2 and all(0 < len(line) <= MAX_LINE_CHARS for line in lines), text


def test_the_voice_speaks_in_every_cue_and_is_silent_just_before_each_segments_first_cue(dream):
    voice, sr = dream["voice"], dream["sr"]
    segments = [s for s in dream["timings_data"]["segments"] if s["end"] > s["start"]]
    firsts = set()
    for cue in dream["cues"]:
        start, end, text = cue
        assert rms_db(voice[int(start * sr) : int(end * sr)]) > -40.0, text
        segment = _segment_of(cue, segments)
        if id(segment) not in firsts:
            firsts.add(id(segment))
            before = voice[max(0, int((start - 0.1) * sr)) : int(start * sr)]
            assert peak_db(before) < -50.0, text
    assert len(firsts) == len(segments)


def test_long_segments_are_split_between_words(dream):
    """A split falls in a quiet moment of the voice, not in the middle of a word."""
    voice, sr = dream["voice"], dream["sr"]
    cues = dream["cues"]
    joins = [b0 for (_, a1, _), (b0, _, _) in zip(cues, cues[1:]) if b0 - a1 < 0.01]
    assert len(joins) >= 10  # the dream's long sentences need several cues each
    quieter = 0
    for t in joins:
        around = voice[int((t - 0.02) * sr) : int((t + 0.02) * sr)]
        window = voice[int((t - 0.5) * sr) : int((t + 0.5) * sr)]
        quieter += rms_db(around) < rms_db(window) - 6.0
    assert quieter >= 0.8 * len(joins)


def test_ffmpeg_reads_the_dreams_captions_without_complaint(dream):
    assert decode_errors(dream["vtt"], "ass") == ""


def _timeline(texts, sr=1000, speech_s=4.0, gap_s=1.0):
    segments, cursor = [], 1000
    for text in texts:
        length = int(speech_s * sr * max(1, len(text) / 60))
        segments.append(Segment(text, "", cursor, length))
        cursor += length + int(gap_s * sr)
    return Timeline(
        sample_rate=sr, length=cursor, segments=tuple(segments), scenes=(SceneSpan("", 0, cursor),)
    )


TEXTS = [
    "Breathe in.",
    "Let your body settle, and notice the weight of your hands resting where they are, heavy and warm, "
    "while the breath moves on its own without any help from you at all.",
    "Fish & chips <b>are</b> not --> markup here.",
]


@pytest.mark.parametrize("suffix", [".vtt", ".srt"])
def test_written_files_round_trip_the_cues_and_ffmpeg_reads_them(tmp_path, suffix):
    timeline = _timeline(TEXTS)
    cues = plan_cues(timeline)
    path = tmp_path / f"c{suffix}"
    path.write_text(format_captions(cues, suffix), encoding="utf-8")
    read = read_cues(path)
    assert [(round(a * 1000), round(b * 1000)) for a, b, _ in read] == [
        (c.start_ms, c.end_ms) for c in cues
    ]
    if suffix == ".vtt":  # WebVTT escapes what would be markup; the reader gives the entities back
        assert (
            read[-1][2] == "Fish &amp; chips &lt;b&gt;are&lt;/b&gt; not --&gt;\nmarkup here."
            or "&amp;" in read[-1][2]
        )
    else:
        assert read[-1][2].replace("\n", " ") == TEXTS[-1]
    assert decode_errors(path, "ass") == ""


def test_cues_are_proportional_without_the_voice_and_stay_inside_their_segment():
    timeline = _timeline(TEXTS)
    cues = plan_cues(timeline)
    long = timeline.segments[1]
    inside = [c for c in cues if long.start <= c.start_ms and c.end_ms <= long.end]
    assert len(inside) >= 3
    # Cue durations follow their share of the characters.
    chars = np.array([len(c.text.replace("\n", " ")) for c in inside], dtype=float)
    durations = np.array([c.end_ms - c.start_ms for c in inside], dtype=float)
    assert np.allclose(durations / durations.sum(), chars / chars.sum(), atol=0.06)


@pytest.mark.parametrize(
    "text",
    [
        "Hi.",
        "A sentence that is just a little longer than one caption line can hold.",
        "Supercalifragilisticexpialidociousnessandthensomemoreletters in one word.",
        " ".join(["word"] * 120),
    ],
)
def test_split_text_keeps_every_word_in_two_lines_of_42(text):
    groups = split_text(text)
    assert " ".join(" ".join(g) for g in groups).replace(" ", "") == text.replace(" ", "")
    for lines in groups:
        assert 1 <= len(lines) <= 2 and all(len(line) <= MAX_LINE_CHARS for line in lines)


def test_a_break_after_punctuation_is_preferred():
    lines = split_text("Let your body settle, and notice the weight of your hands.")[0]
    assert lines == ["Let your body settle,", "and notice the weight of your hands."]


def test_the_srt_of_a_short_render_matches_its_timings(tmp_path):
    script = tmp_path / "s.md"
    script.write_text(
        "# One\n\nBreathe in, slowly, and let the breath fill you from the belly up to the chest.\n\nBreathe out.\n",
        encoding="utf-8",
    )
    out, captions, timings = tmp_path / "s.opus", tmp_path / "s.srt", tmp_path / "s.json"
    assert quick_render(script, out, "--captions", str(captions), "--timings", str(timings)) == 0
    import json

    segments = json.loads(timings.read_text(encoding="utf-8"))["segments"]
    cues = read_cues(captions)
    # A cue starts with the first sound of its segment (which keeps up to 30 ms of quiet before it) and ends with it.
    for segment in segments:
        first = next(c for c in cues if c[1] > segment["start"])
        assert segment["start"] - 0.0011 <= first[0] <= segment["start"] + 0.035
    assert cues[-1][1] == pytest.approx(segments[-1]["end"], abs=0.0011)
    assert decode_errors(captions, "ass") == ""


# --- bad publication inputs: one line, exit 2, no file ------------------------------------------


def _bad_cases(tmp_path):
    unreadable = tmp_path / "unreadable.png"
    unreadable.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    text = tmp_path / "notes.png"
    text.write_text("not a picture", encoding="utf-8")
    return {
        "missing cover": (["--cover", str(tmp_path / "nope.png")], "cover image", "does not exist"),
        "unreadable image": (["--cover", str(unreadable)], "cover image", "damaged PNG"),
        "not an image": (["--cover", str(text)], "cover image", "not a PNG or JPEG"),
        "captions into a missing folder": (
            ["--captions", str(tmp_path / "no" / "c.vtt")],
            "captions",
            "does not exist",
        ),
        "unknown caption suffix": (["--captions", str(tmp_path / "c.txt")], "captions", "'.txt'"),
        "unknown plot suffix": (["--plot", str(tmp_path / "p.gif")], "plot", "'.gif'"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "missing cover",
        "unreadable image",
        "not an image",
        "captions into a missing folder",
        "unknown caption suffix",
        "unknown plot suffix",
    ],
)
def test_bad_publication_inputs_are_refused_before_synthesis(tmp_path, capsys, monkeypatch, name):
    script = tmp_path / "s.md"
    script.write_text(
        "# One\n\nA sentence nobody has spoken before, number 9931.\n", encoding="utf-8"
    )
    cache = tmp_path / "cache"
    monkeypatch.setenv("MEDITATION_CACHE_DIR", str(cache))
    extra, *words = _bad_cases(tmp_path)[name]
    before = set(tmp_path.rglob("*"))
    code = main(
        [
            "render",
            str(script),
            "--voice",
            "pyttsx3",
            "-o",
            str(tmp_path / "out.mp3"),
            "--progress",
            "off",
            *extra,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    for word in words:
        assert word in err
    assert (
        set(tmp_path.rglob("*")) == before
    )  # no output, no captions, nothing cached: nothing was spoken
