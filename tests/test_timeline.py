"""Planning gaps and laying segments out: the rules a reader applies to predict the timeline."""

import json

import pytest

from meditation.errors import SettingsError
from meditation.script import parse_script
from meditation.segments import Gaps, plan_segments
from meditation.timeline import fit_pause_scale, layout

SR = 44100
G = Gaps()


def _plan(text):
    return plan_segments(parse_script(text), rate=0.9)


def _gaps(text):
    return [(s.text, s.gap_before_s) for s in _plan(text)]


def _layout(text, *, pause_scale=1.0, lead_in_s=4.0, tail_s=10.0, speech=SR):
    script = parse_script(text)
    planned = plan_segments(script, rate=0.9)
    lengths = [speech for s in planned if s.spoken]
    timeline = layout(
        planned,
        lengths,
        sample_rate=SR,
        lead_in_s=lead_in_s,
        tail_s=tail_s,
        scene_names=[s.name for s in script.scenes],
        pause_scale=pause_scale,
    )
    return planned, timeline


# --- written pauses and structural gaps (issue 8, item 17) ---


def test_inside_a_paragraph_a_written_pause_replaces_the_sentence_gap_when_longer():
    assert _gaps("One. [pause 4s] Two. [pause 500ms] Three. Four.") == [
        ("One.", 0.0),
        ("Two.", 4.0),
        ("Three.", G.sentence_s),
        ("Four.", G.sentence_s),
    ]


def test_between_paragraphs_and_scenes_a_written_pause_adds_to_the_gap():
    text = "# A\n\nOne.\n\n[pause 3s]\n\nTwo. [breathe]\n\n# B\n\n[pause 2s] Three."
    assert _gaps(text) == [
        ("One.", 0.0),
        ("Two.", G.paragraph_s + 3.0),
        ("Three.", G.scene_s + 6.0 + 2.0),  # a [breathe] at a scene's end no longer disappears
    ]


def test_a_pause_after_the_last_sentence_lengthens_the_tail_and_one_before_the_first_the_lead_in():
    _, plain = _layout("Hello there.")
    planned, paused = _layout("[pause 2s] Hello there. [pause 3s]")
    assert paused.segments[0].start - plain.segments[0].start == 2 * SR
    assert paused.length - plain.length == 5 * SR
    assert [s.text for s in paused.segments] == [
        "Hello there."
    ]  # silence is not a segment of the timings
    _, scaled = _layout("[pause 2s] Hello there. [pause 3s]", pause_scale=2.0)
    assert scaled.length - plain.length == 10 * SR  # written pauses scale with --pause-scale


def test_every_plan_has_finite_non_negative_gaps_and_spoken_text():
    planned = _plan(
        "# A\n\nOne, two; three — four.\n\n[breathe 4-6 x2 cues]\n\n# B\n\nFive. [pause 1s]"
    )
    assert all(s.gap_before_s >= 0 for s in planned)
    assert [s.text for s in planned if s.spoken] == [
        "One, two; three — four.",
        "In",
        "Out",
        "In",
        "Out",
        "Five.",
    ]


# --- guided breathing on the timeline (issue 10, item 4) ---


def test_breathing_phases_are_exact_and_add_up_in_samples_and_in_the_json():
    _, timeline = _layout(
        "Breathe with me. [breathe 4-7-8 x4 cues] Good.\n\n[breathe box 4.5 x2]\n\nRest."
    )
    breaths = timeline.breaths
    assert [b.phase for b in breaths[:3]] == ["in", "hold", "out"] and len(breaths) == 12 + 8
    first, second = breaths[:12], breaths[12:]
    for exercise, total_s in ((first, 76.0), (second, 36.0)):
        assert all(a.end == b.start for a, b in zip(exercise, exercise[1:]))
        assert exercise[-1].end - exercise[0].start == round(total_s * SR)
    assert [b.length for b in first[:3]] == [4 * SR, 7 * SR, 8 * SR]
    data = json.loads(json.dumps(timeline.to_dict()))
    assert [b["phase"] for b in data["breaths"]] == [b.phase for b in breaths]
    assert sum(b["duration"] for b in data["breaths"][:12]) == 76.0
    for a, b in zip(data["breaths"][:11], data["breaths"][1:12]):
        assert b["start"] == pytest.approx(a["start"] + a["duration"], abs=1e-6)


def test_a_plain_breathe_just_before_an_exercise_is_breathed_and_ends_where_the_exercise_starts():
    # Found by the property test: the plain [breathe]'s time was kept, its breath was lost.
    for text in (
        "[breathe] [breathe 4-7-8 x4] Rest.",
        "Now. [breathe]\n\n[breathe 4-7-8 x4]\n\nRest.",
    ):
        _, timeline = _layout(text)
        breaths = timeline.breaths
        assert [b.phase for b in breaths[:3]] == ["in", "out", "in"] and len(breaths) == 2 + 12
        assert breaths[1].end == breaths[2].start  # the plain breath ends as the exercise begins
        assert breaths[0].length + breaths[1].length == 6 * SR  # [breathe] is six seconds


def test_breathing_is_not_scaled_by_pause_scale_but_the_gaps_around_it_are():
    text = "Now. [breathe 4-7-8 x2] Then.\n\nMore."
    _, one = _layout(text)
    _, two = _layout(text, pause_scale=2.0)
    for t in (one, two):
        assert t.breaths[-1].end - t.breaths[0].start == 38 * SR
    now_end = one.segments[0].end
    assert one.breaths[0].start - now_end == round(G.sentence_s * SR)
    assert two.breaths[0].start - two.segments[0].end == round(2 * G.sentence_s * SR)
    assert one.segments[1].start - one.breaths[-1].end == round(G.sentence_s * SR)


def test_spoken_cues_start_at_their_phase_and_sound_on_it():
    _, timeline = _layout("Now. [breathe 4-7-8 x2 cues] Then.")
    cues = [s for s in timeline.segments if s.text in ("In", "Hold", "Out")]
    assert [c.text for c in cues] == ["In", "Hold", "Out"] * 2
    for cue, phase in zip(cues, timeline.breaths):
        # 15 ms early: trimmed speech sounds 0 to 30 ms into its segment.
        assert phase.start - cue.start == round(0.015 * SR)
    starts = [s.start for s in timeline.segments]
    assert starts == sorted(starts) and all(
        a.end <= b.start for a, b in zip(timeline.segments, timeline.segments[1:])
    )


def test_an_exercise_alone_in_a_scene_gives_the_scene_a_place():
    _, timeline = _layout("# A\n\nHello.\n\n# Breathing\n\n[breathe 4-4 x3]\n\n# C\n\nBye.")
    names = [s.name for s in timeline.scenes]
    assert names == ["A", "Breathing", "C"]
    span = timeline.scenes[1]
    assert span.start < timeline.breaths[0].start and timeline.breaths[-1].end < span.end


# --- --duration: the real reason (issue 8, item 12) ---


def test_duration_on_a_script_with_nothing_to_stretch_says_so():
    planned, _ = _layout("Hello there.")
    with pytest.raises(SettingsError) as info:
        fit_pause_scale(planned, [SR], sample_rate=SR, lead_in_s=4, tail_s=10, duration_s=60)
    message = str(info.value)
    assert "no pause to stretch" in message and "too short" not in message


def test_duration_fits_gaps_around_fixed_breathing():
    planned, _ = _layout("Now. [breathe 4-6 x3] Then. And.")
    lengths = [SR for s in planned if s.spoken]
    scale = fit_pause_scale(
        planned, lengths, sample_rate=SR, lead_in_s=4, tail_s=10, duration_s=120
    )
    timeline = layout(
        planned,
        lengths,
        sample_rate=SR,
        lead_in_s=4,
        tail_s=10,
        scene_names=[""],
        pause_scale=scale,
    )
    assert timeline.length == pytest.approx(120 * SR, abs=3)
    assert timeline.breaths[-1].end - timeline.breaths[0].start == 30 * SR


def test_the_timings_give_each_segment_and_scene_where_it_is_heard():
    # What a captioner or a player reads: seconds that land on the samples, in order.
    _, timeline = _layout("# One\n\nFirst words. Second words.\n\n# Two\n\nLast words.")
    data = json.loads(json.dumps(timeline.to_dict()))
    assert data["duration"] == pytest.approx(timeline.length / SR, abs=1e-4)
    assert data["sample_rate"] == SR
    assert [g["text"] for g in data["segments"]] == [g.text for g in timeline.segments]
    assert [g["scene"] for g in data["segments"]] == ["One", "One", "Two"]
    for written, segment in zip(data["segments"], timeline.segments, strict=True):
        assert written["start"] * SR == pytest.approx(segment.start, abs=SR * 1e-4)
        assert written["end"] * SR == pytest.approx(segment.end, abs=SR * 1e-4)
    assert [s["name"] for s in data["scenes"]] == ["One", "Two"]
    assert data["scenes"][0]["end"] == data["scenes"][1]["start"] <= data["segments"][2]["start"]
    assert data["scenes"][-1]["end"] == data["duration"]


def test_the_cli_gives_the_real_reason_for_an_unstretchable_duration(tmp_path, capsys):
    from meditation.cli import main

    script = tmp_path / "hello.md"
    script.write_text("Hello there.\n", encoding="utf-8")
    out = tmp_path / "hello.wav"
    code = main(
        [
            "render",
            str(script),
            "-o",
            str(out),
            "--voice",
            "pyttsx3",
            "--duration",
            "60s",
            "--progress",
            "off",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "no pause to stretch" in err and "too short" not in err
    assert not out.exists()
