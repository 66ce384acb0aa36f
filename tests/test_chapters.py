"""Chapters, one per scene, in every format that carries them — read back as a player's demuxer reads them."""

import pytest
from ffmpeg import attached_picture, decode_errors, ffmpeg_chapters
from published import DREAM_SCENES
from quick import quick_render

from meditation.chapters import chapters_from_timeline
from meditation.timeline import SceneSpan, Timeline


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".m4b", ".mp3", ".opus", ".ogg", ".flac"])
def test_the_dream_has_a_named_chapter_per_scene_at_the_scene_start_and_its_cover(
    published, suffix
):
    render = published(suffix)
    chapters = ffmpeg_chapters(render["output"])
    assert [title for _, title in chapters] == list(DREAM_SCENES)
    scene_starts = [s["start"] for s in render["timings_data"]["scenes"]]
    for (start, title), expected in zip(chapters, scene_starts):
        assert start == pytest.approx(expected, abs=0.050), title
    assert attached_picture(render["output"]) == "png 96x96"
    assert decode_errors(render["output"]) == ""


@pytest.mark.slow
def test_no_chapters_leaves_them_out(tmp_path):
    script = tmp_path / "s.md"
    script.write_text("# One\n\nBreathe in.\n\n# Two\n\nBreathe out.\n", encoding="utf-8")
    out = tmp_path / "s.mp3"
    assert quick_render(script, out, "--no-chapters") == 0
    assert ffmpeg_chapters(out) == []
    out2 = tmp_path / "s2.mp3"
    assert quick_render(script, out2) == 0
    assert [t for _, t in ffmpeg_chapters(out2)] == ["One", "Two"]


def _timeline(*scenes):
    sr = 1000
    spans = tuple(SceneSpan(name, int(a * sr), int(b * sr)) for name, a, b in scenes)
    return Timeline(sample_rate=sr, length=spans[-1].end, segments=(), scenes=spans)


def test_a_script_without_headings_has_no_chapters():
    assert chapters_from_timeline(_timeline(("", 0, 60))) == ()


def test_text_before_the_first_heading_belongs_to_the_first_chapter():
    chapters = chapters_from_timeline(
        _timeline(("", 0, 10), ("Arriving", 10, 40), ("Resting", 40, 70))
    )
    assert [(c.title, c.start_s, c.end_s) for c in chapters] == [
        ("Arriving", 0.0, 40.0),
        ("Resting", 40.0, 70.0),
    ]


def test_the_dreams_tags_say_what_it_is_and_how_it_was_made(published):
    import mutagen

    from meditation import __version__

    render = published(".mp3")
    tags = mutagen.File(render["output"]).tags
    assert str(tags["TIT2"]) == "The Library and the Phoenix"
    assert str(tags["TALB"]) == "The Library and the Phoenix"  # album defaults to the title
    assert str(tags["TCON"]) == "Meditation" and str(tags["TPE1"]) == "meditation"
    assert str(tags["TDRC"]).isdigit()
    comment = str(tags.getall("COMM")[0])
    assert (
        comment.startswith("voice pyttsx3:") and f"meditation {__version__}" in comment
    )  # the tests' voice
    for part in ("rate 0.8", "soundscape dream", "seed 1"):  # the tests' pace, the front matter's
        assert part in comment
    # Without --rate the dream's own pace (front matter wpm: 135) is what the tags say.
    book = mutagen.File(published(".m4b")["output"]).tags
    assert "for 135 wpm" in str(book["\xa9cmt"][0])


def test_album_and_year_can_be_set(tmp_path, monkeypatch):
    import mutagen

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # reproducible builds fix the year (2023)
    script = tmp_path / "s.md"
    script.write_text("# One\n\nBreathe in.\n", encoding="utf-8")
    out = tmp_path / "s.m4a"
    assert quick_render(script, out, "--album", "Evening series") == 0
    tags = mutagen.File(out).tags
    assert (
        tags["\xa9alb"] == ["Evening series"]
        and tags["\xa9day"] == ["2023"]
        and tags["\xa9gen"] == ["Meditation"]
    )
