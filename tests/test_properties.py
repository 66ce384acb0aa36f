"""Property-based tests of the script parser and segment planner (hypothesis).

Whatever a user (or the studio, as they type) hands the parser, only the
project's own errors come out, and every script that parses yields spoken
segments with finite, non-negative gaps and a timeline that adds up.

Profiles (tests/conftest.py): the default runs 4,000 generated scripts in about
ten seconds of CPU time. For an occasional deep run::

    HYPOTHESIS_PROFILE=deep python -m pytest tests/test_properties.py

(50 times as many examples; minutes, not seconds).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meditation.errors import MeditationError
from meditation.script import Paragraph, Pause, parse_script
from meditation.segments import max_chars_for, plan_segments, spoken_length
from meditation.timeline import layout

# Pieces of markup, whole and broken, that scripts are made of.
_MARKUP = st.sampled_from(
    [
        "[pause 3s]",
        "[pause 500ms]",
        "[pause 0s]",
        "[pause]",
        "[pause 3 minutes]",
        "[pause 700s]",
        "[pause",
        "[breathe]",
        "[breathe 8s]",
        "[breathe 4-7-8 x4]",
        "[breathe 4-7-8 x4 cues]",
        "[breathe box 4 x3]",
        "[breathe 4-6 x2 cues]",
        "[breathe 4-0-8]",
        "[breathe 4-7-x]",
        "[breathe box]",
        "[breathe 0-4]",
        "[breathe 4-7-8 x0]",
        "[breathe 1-1 x100 cues]",
        "[breathe",
        "[]",
        "[[pause 2s]]",
        "]",
        "\\[",
        "\\<",
        '<break time="2s"/>',
        "<break time='500ms'/>",
        '<break strength="strong"/>',
        "<break>",
        "<break",
        "<break/>",
        '<break time="2s">',
        "<speak>",
        "</speak>",
        "<prosody rate='slow'>",
        "< ",
        "<",
        ">",
        "<>",
        "<3",
        "a < b > c",
        "\n",
        "\n\n",
        "# Scene\n",
        "## Deep\n",
        "#\n",
        "---\n",
        "---\ntitle: T\n---\n",
        "---\ncolour: x\n---\n",
        "---\nrate: 0.8\nseed: 3\n---\n",
        ". ",
        "... ",
        "— ",
        "? ",
        "! ",
        "。",
        "！",
        "？",
        "、",
        ", ",
        "; ",
        "Dr. ",
        "e.g. ",
        "3.5 ",
        "U.S.A. ",
        "“Really?” ",
        "calm. ",
    ]
)
_WORDS = st.sampled_from(
    [
        "Rest",
        "breathe",
        "slowly",
        "Let",
        "the",
        "river",
        "carry",
        "you",
        "now",
        "and",
        "here",
        "静かに",
        "呼吸",
        "森の中で",
        "我们",
        "慢慢地",
        "안녕",
        "مرحبا",
        "שלום",
        "Привет",
        "मन",
        "🌊",
        "🙏",
        "✨",
        "\u200b",
        "\u200d",
        "\u2060",
        "\ufeff",
        "\u202e",
        "\x07",
        "\x1b",
        "\t",
        "  ",
        "\u3000",
    ]
)
_UNICODE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
_PIECES = st.lists(st.one_of(_MARKUP, _WORDS, _WORDS, _UNICODE), max_size=40)


def _check_plan(text: str) -> None:
    """Parse and plan ``text``: a MeditationError, or a plan and timeline that make sense."""
    try:
        script = parse_script(text, path="p.md")
    except MeditationError:
        return
    assert any(isinstance(i, Paragraph) for scene in script.scenes for i in scene.items)
    planned = plan_segments(script, rate=0.9)
    spoken = [s for s in planned if s.spoken]
    assert spoken, "a script that parses must have something to say"
    limit = max_chars_for(0.9)  # about 15 s of speech
    for s in planned:
        assert math.isfinite(s.gap_before_s) and s.gap_before_s >= 0, s
        assert all(math.isfinite(sec) and sec > 0 for _, sec in s.breaths), s
    for s in spoken:
        assert s.text == s.text.strip() and s.text
        assert spoken_length(s.text) <= limit, s
    # Lay it out with one second of speech per segment: everything adds up.
    sr = 8000
    timeline = layout(
        planned,
        [sr] * len(spoken),
        sample_rate=sr,
        lead_in_s=1.0,
        tail_s=1.0,
        scene_names=[sc.name for sc in script.scenes],
    )
    starts = [s.start for s in timeline.segments]
    assert starts == sorted(starts) and all(
        a.end <= b.start for a, b in zip(timeline.segments, timeline.segments[1:])
    )
    assert all(
        a.end == b.start or b.start > a.end for a, b in zip(timeline.breaths, timeline.breaths[1:])
    )
    exercises = [
        p for scene in script.scenes for p in scene.items if isinstance(p, Pause) and p.phases
    ]
    assert sum(b.length for b in timeline.breaths) == sum(
        round(sum(sec for _, sec in p.phases[: k + 1]) * sr)
        - round(sum(sec for _, sec in p.phases[:k]) * sr)
        for p in exercises
        for k in range(len(p.phases))
    ) + sum(  # a plain [breathe]: one breath over its whole length
        n
        for scene in script.scenes
        for p in scene.items
        if isinstance(p, Pause) and p.kind == "breathe" and not p.phases
        for n in [round(p.seconds * sr)]
        if n >= 2
    )
    assert timeline.length >= (timeline.segments[-1].end if timeline.segments else 0)
    assert (
        timeline.scenes
        and timeline.scenes[0].start == 0
        and timeline.scenes[-1].end == timeline.length
    )


@pytest.mark.slow
@given(_PIECES)
def test_scripts_of_markup_fragments_parse_or_fail_with_our_error(pieces):
    _check_plan("".join(pieces))


@given(_PIECES, st.sampled_from(["", " ", "\n", "\n\n"]))
def test_scripts_of_fragments_joined_by_spaces_or_lines(pieces, sep):
    _check_plan(sep.join(pieces))


@given(st.text(max_size=200))
def test_arbitrary_unicode_text(text):
    _check_plan(text)


@pytest.mark.slow
@given(
    st.lists(
        st.sampled_from(["title", "rate", "seed", "voice", "colour", "pause-scale", "# note", ""]),
        max_size=5,
    ),
    st.lists(
        st.one_of(_UNICODE, st.sampled_from(["x", "0.8", '"quoted"', "'", ""])),
        min_size=5,
        max_size=5,
    ),
    _PIECES,
)
def test_front_matter_blocks(keys, values, body):
    lines = [f"{k}: {v}" if k and not k.startswith("#") else k for k, v in zip(keys, values)]
    _check_plan("---\n" + "\n".join(lines) + "\n---\n" + "".join(body))


@pytest.mark.slow
@given(
    st.lists(
        st.sampled_from(
            [
                "[",
                "]",
                "<",
                ">",
                "/",
                "break",
                "pause",
                "breathe",
                " ",
                "2s",
                '"',
                "=",
                "time",
                "x4",
                "-",
                "4",
            ]
        ),
        max_size=60,
    )
)
def test_nested_and_unclosed_brackets(pieces):
    _check_plan("Rest. " + "".join(pieces) + " Now.")


@given(
    lengths=st.lists(st.integers(0, 30_000), min_size=3, max_size=3),
    depth=st.floats(0.0, 24.0),
    chunks=st.lists(st.tuples(st.integers(0, 200_000), st.integers(1, 40_000)), max_size=8),
)
def test_the_ducking_gain_of_any_chunk_is_the_envelope_sampled_there(lengths, depth, chunks):
    """The ducking and level envelopes answer a flat stretch at once: it must equal interpolating every sample."""
    import numpy as np

    from meditation.mix import DuckEnvelope, Ducking, LevelEnvelope

    script = parse_script("# A\n\nOne. [pause 1s] Two.\n\n# B\n\nThree.\n")
    planned = plan_segments(script, rate=1.0)
    spoken = [s for s in planned if s.spoken]
    timeline = layout(
        planned,
        lengths[: len(spoken)],
        sample_rate=8000,
        lead_in_s=0.5,
        tail_s=1.0,
        scene_names=[sc.name for sc in script.scenes],
    )
    duck = DuckEnvelope(timeline, Ducking(depth_db=depth))
    # The wind-down's level envelope answers the same way; here one that starts later than 0.
    level = LevelEnvelope(duck._x + 500, duck._y[::-1])
    for envelope in (duck, level):
        for start, n in [(0, timeline.length), *chunks]:
            every = np.interp(
                np.arange(start, start + n, dtype=np.float64), envelope._x, envelope._y
            )
            assert np.array_equal(envelope.gain(start, n), every.astype(np.float32))
