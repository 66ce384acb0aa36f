"""Sentence and clause splitting."""

import pytest

from meditation.segments import (
    plan_segments,
    segment_paragraph,
    speakable,
    split_long,
    split_sentences,
)


def test_abbreviations_numbers_and_ellipses_do_not_split():
    text = "Dr. Lee arrived at 3.5 p.m. today. It was late… and quiet. “Really?” she asked. See e.g. this one."
    assert split_sentences(text) == [
        "Dr. Lee arrived at 3.5 p.m. today.",
        "It was late… and quiet.",
        "“Really?” she asked.",
        "See e.g. this one.",
    ]


def test_sentence_ends_with_closing_quote_and_exclamation():
    assert split_sentences("He said “rest.” Then silence! Breathe?") == [
        "He said “rest.”",
        "Then silence!",
        "Breathe?",
    ]


def test_long_sentence_splits_at_clause_boundaries_under_the_limit():
    sentence = (
        "The phoenix spreads its radiant wings, and with a single, powerful beat, lifts us into the air; "
        "we soar above the valley, the wind caressing my face, carrying away the remnants of old thoughts."
    )
    pieces = split_long(sentence, 80)
    assert all(len(p) <= 80 for p in pieces)
    assert " ".join(pieces) == sentence
    assert all(p[-1] in ",;." for p in pieces[:-1])


def test_unbroken_text_splits_between_words():
    sentence = " ".join(["word"] * 60)
    pieces = split_long(sentence, 50)
    assert all(len(p) <= 50 for p in pieces) and " ".join(pieces) == sentence


@pytest.mark.parametrize("text", ["🌊🌊🌊", "…", "— —", "🙏 .", "   "])
def test_emoji_and_punctuation_alone_give_no_segment(text):
    assert segment_paragraph(text, max_chars=100) == []


def test_emoji_removed_but_non_latin_text_kept():
    assert speakable("Rest 🌙 now ✨") == "Rest now"
    assert segment_paragraph("Привет, мир. 日本語のテキスト。Done.", max_chars=100) == [
        ["Привет, мир."],
        ["日本語のテキスト。"],
        ["Done."],
    ]


# --- linear time on hostile text (issue 8, item 5) ---

_MB = 990_000


def _fill(unit: str, size: int = _MB) -> str:
    return unit * (size // len(unit.encode("utf-8")))


# One megabyte of hostile scripts in all, an equal share each.
_SHARE = _MB // 12
_ADVERSARIAL = {
    "unclosed <": "Hello there. <" + " " * _SHARE,
    "unclosed <break": "Hello. <break" + " " * _SHARE,
    "lone < runs": "Hi. " + _fill("< ", _SHARE),
    "<break + spaces": _fill("Hello. \\<break" + " " * 8000 + "\n", _SHARE),
    "spaces and tabs": "Hi.\t" + _fill("\t  ", _SHARE),
    "[pause runs": _fill("Rest. [pause 1s]", _SHARE),
    "lower-case sentences": _fill("calm. ", _SHARE),
    "abbreviations": _fill("Dr. St. Mr. e.g. ", _SHARE),
    "initials": _fill("J. R. R. T. ", _SHARE),
    "emoji": _fill("Rest 🌊 now. ", _SHARE),
    "CJK without spaces": _fill("静かな森の中で私たちはゆっくりと呼吸をします", _SHARE),
    "breathing with cues": _fill("In. [breathe 4-4 cues] ", _SHARE),
}


def _cpu_s(fn, repeats: int = 3) -> float:
    """Least CPU time of a few runs: CPU time, not wall time, so a busy machine does not skew it."""
    import time

    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.slow
def test_a_megabyte_of_hostile_text_parses_in_a_few_times_the_time_of_plain_prose():
    """A ratio measured in the same test, not a wall-clock limit: the old parser was quadratic or worse here."""
    from meditation.errors import ScriptError
    from meditation.script import parse_script

    plain = _fill(
        "Let your body settle into the chair, and notice the weight of your hands. Breathe slowly.\n\n"
    )

    def parse(text):
        def run():
            try:
                plan_segments(parse_script(text), rate=0.9)
            except ScriptError:
                pass  # a refusal (an unclosed tag) is an answer too: how fast it comes is what counts

        return run

    reference = _cpu_s(parse(plain))
    times = {name: _cpu_s(parse(text)) for name, text in _ADVERSARIAL.items()}
    total = sum(times.values()) / reference
    assert total <= 5.0, (
        f"1 MB of hostile scripts took {total:.1f}x the CPU time of 1 MB of prose ({reference:.2f} s)"
    )
    # And no single kind is far slower per byte than prose (a quadratic one would be, even at 90 KB).
    per_byte = {
        name: t / reference * _MB / len(_ADVERSARIAL[name].encode("utf-8"))
        for name, t in times.items()
    }
    slow = {name: round(r, 1) for name, r in per_byte.items() if r > 10.0}
    assert not slow, f"per byte, slower than 10x prose: {slow}"


def test_lower_case_sentences_split_sentences_linearly():
    """The issue's case: "calm. " x 40,000 took 33 s; four times the text must take about four times as long.

    The bound is twice linear (8x): a quadratic split would take 16x.
    """
    small, large = "calm. " * 40_000, "calm. " * 160_000
    ratio = _cpu_s(lambda: split_sentences(large)) / max(
        _cpu_s(lambda: split_sentences(small)), 1e-4
    )
    assert ratio < 4 * 2.0, f"4x the text took {ratio:.1f}x the time"


# --- full-width sentence ends and the ~15 s segment limit (issue 8, item 17) ---


def test_full_width_ends_split_sentences_without_a_space():
    assert split_sentences("静かに座ります。息を吸います！聞こえますか？はい。") == [
        "静かに座ります。",
        "息を吸います！",
        "聞こえますか？",
        "はい。",
    ]
    assert split_sentences("「休みましょう。」そして眠ります。") == [
        "「休みましょう。」",
        "そして眠ります。",
    ]


def test_long_cjk_sentences_split_under_the_segment_limit():
    from meditation.segments import max_chars_for, spoken_length

    limit = max_chars_for(0.9)
    for text in (
        "静かな森の中で" * 40 + "。",
        "我们慢慢地呼吸，感受身体的重量" * 10 + "。",
        "ゆっくり、" * 60,
    ):
        pieces = [p for sentence in segment_paragraph(text, max_chars=limit) for p in sentence]
        assert len(pieces) > 1
        assert all(spoken_length(p) <= limit for p in pieces), [spoken_length(p) for p in pieces]
        assert "".join(pieces) == text.replace(" ", "")
    # CJK counts three: 50 characters is as long to say as 150 Latin ones.
    assert spoken_length("静" * 50) == 150 and spoken_length("rest") == 4


def test_a_script_of_japanese_plans_no_segment_over_15_seconds():
    from meditation.script import parse_script

    line = (
        "静かな森の中で私たちはゆっくりと呼吸をします。" * 3
        + "木々の間を風が通り抜けていく音を聞きながら心を休めます" * 4
    )
    planned = plan_segments(parse_script(line), rate=1.0)
    # About 5 CJK characters a second: the voice's own pace for these scripts.
    assert max(len(s.text) for s in planned) / 5.0 <= 15.0


def test_a_full_width_end_before_latin_lower_case_still_ends_the_sentence():
    assert split_sentences("静かに座ります。then we rest.") == ["静かに座ります。", "then we rest."]
