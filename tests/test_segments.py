"""Sentence and clause splitting."""

import pytest

from meditation.segments import segment_paragraph, speakable, split_long, split_sentences


def test_abbreviations_numbers_and_ellipses_do_not_split():
    text = "Dr. Lee arrived at 3.5 p.m. today. It was late… and quiet. “Really?” she asked. See e.g. this one."
    assert split_sentences(text) == [
        "Dr. Lee arrived at 3.5 p.m. today.",
        "It was late… and quiet.",
        "“Really?” she asked.",
        "See e.g. this one.",
    ]


def test_sentence_ends_with_closing_quote_and_exclamation():
    assert split_sentences("He said “rest.” Then silence! Breathe?") == ["He said “rest.”", "Then silence!", "Breathe?"]


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
    assert segment_paragraph("Привет, мир. 日本語のテキスト。Done.", max_chars=100) == [["Привет, мир."], ["日本語のテキスト。"], ["Done."]]
