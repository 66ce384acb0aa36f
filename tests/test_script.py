"""Parsing scripts: markup, front matter, errors with file:line:col."""

import re
from pathlib import Path

import pytest

from meditation.errors import ScriptError
from meditation.script import Paragraph, Pause, parse_script, read_script

ROOT = Path(__file__).resolve().parent.parent


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'’—-]+", text)


def test_plain_text_paragraphs_become_one_unnamed_scene():
    script = parse_script("First line.\nStill first.\n\nSecond paragraph.", path="x.txt")
    assert not script.has_scenes
    (scene,) = script.scenes
    assert [p.text for p in scene.items] == ["First line. Still first.", "Second paragraph."]
    assert [p.line for p in scene.items] == [1, 4]


def test_front_matter_scenes_and_pauses():
    text = '---\ntitle: Evening\nrate: 0.8\n---\n# Arrive\n\nSit. [pause 4s] Rest <break time="500ms"/> now.\n\n[breathe]\n\n# Leave\n\nGo.'
    script = parse_script(text, path="m.md")
    assert script.title == "Evening"
    assert script.settings == {"title": "Evening", "rate": "0.8"}
    assert [s.name for s in script.scenes] == ["Arrive", "Leave"]
    items = script.scenes[0].items
    assert items[0] == Paragraph("Sit.", 7)
    assert items[1] == Pause(4.0, "pause", 7)
    assert items[2].text == "Rest" and items[2].continues
    assert items[3] == Pause(0.5, "pause", 7)
    assert items[5].kind == "breathe" and items[5].seconds == 6.0


def test_ssml_strength_speak_wrapper_and_escaped_bracket():
    script = parse_script('<speak>Hello <break strength="strong"/> there \\[sic].</speak>')
    items = script.scenes[0].items
    assert items[1] == Pause(2.0, "pause", 1)
    assert items[2].text == "there [sic]."


@pytest.mark.parametrize(
    "text, line, col, fragment",
    [
        ("Hello.\n\nOops [pasue 3s] here.", 3, 6, "unknown directive"),
        ("Hello [pause 3 minutes].", 1, 7, "bad pause length"),
        ("Hi <prosody rate='slow'>x</prosody>", 1, 4, "unsupported tag"),
        ("---\ntitle: x\n", 1, 1, "never closed"),
        ("---\ncolour: blue\n---\nHi.", 2, 1, "unknown front matter key"),
        ("#\nHello.", 1, 1, "heading has no name"),
        ("# A\nHi.\n# A\nThere.", 3, 1, "appears twice"),
        ("[pause]", 1, 1, "needs a length"),
    ],
)
def test_malformed_markup_is_refused_with_position(text, line, col, fragment):
    with pytest.raises(ScriptError) as info:
        parse_script(text, path="bad.md")
    assert str(info.value).startswith(f"bad.md:{line}:{col}: ")
    assert fragment in str(info.value)


def test_script_without_words_is_refused():
    with pytest.raises(ScriptError, match="no text to speak"):
        parse_script("# Only a heading\n\n[pause 3s]\n", path="e.md")


def test_binary_and_non_utf8_files_are_refused(tmp_path):
    binary = tmp_path / "b.md"
    binary.write_bytes(b"ID3\x00\x00\x01binary")
    with pytest.raises(ScriptError, match="binary"):
        read_script(binary)
    latin = tmp_path / "l.txt"
    latin.write_bytes("ok\ncaf\xe9".encode("latin-1"))
    with pytest.raises(ScriptError, match=r"l.txt:2:1: is not valid UTF-8"):
        read_script(latin)
    with pytest.raises(ScriptError, match="no such script"):
        read_script(tmp_path / "missing.md")


def test_the_dream_script_is_the_seed_text_word_for_word():
    script = read_script(ROOT / "scripts" / "dream.md")
    spoken = " ".join(item.text for scene in script.scenes for item in scene.items if isinstance(item, Paragraph))
    seed = (ROOT / "scripts" / "dream.txt").read_text(encoding="utf-8")
    assert _words(spoken) == _words(seed)
    assert len(script.scenes) >= 6
    assert {"The library", "The phoenix", "The flight", "The awakening"} <= {s.name for s in script.scenes}


def test_packaged_default_script_is_the_dream():
    from meditation.settings import DEFAULT_SCRIPT

    assert DEFAULT_SCRIPT.read_bytes() == (ROOT / "scripts" / "dream.md").read_bytes()
