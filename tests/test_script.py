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
    spoken = " ".join(
        item.text for scene in script.scenes for item in scene.items if isinstance(item, Paragraph)
    )
    seed = (ROOT / "scripts" / "dream.txt").read_text(encoding="utf-8")
    assert _words(spoken) == _words(seed)
    assert len(script.scenes) >= 6
    assert {"The library", "The phoenix", "The flight", "The awakening"} <= {
        s.name for s in script.scenes
    }


def test_packaged_default_script_is_the_dream():
    from meditation.settings import DEFAULT_SCRIPT

    assert DEFAULT_SCRIPT.read_bytes() == (ROOT / "scripts" / "dream.md").read_bytes()


# --- hostile input: size, file kinds, nothing to say (issue 8, items 5–7) ---


def test_a_script_over_one_megabyte_is_refused_in_one_line(tmp_path):
    from meditation.script import MAX_SCRIPT_BYTES

    big = tmp_path / "big.md"
    big.write_bytes(b"Rest now. " * (MAX_SCRIPT_BYTES // 10 + 1))
    with pytest.raises(ScriptError) as info:
        read_script(big)
    assert (
        str(info.value).startswith(f"{big}: ")
        and "1 MB" in str(info.value)
        and "\n" not in str(info.value)
    )
    # The limit is in bytes of UTF-8: 400,000 three-byte characters are over it.
    with pytest.raises(ScriptError, match="1 MB"):
        parse_script("静" * 400_000)
    huge = tmp_path / "huge.md"  # the 5 MB script: refused from its size, never read
    huge.write_bytes(b"calm. " * 900_000)
    with pytest.raises(ScriptError, match="1 MB"):
        read_script(huge)
    with pytest.raises(ScriptError, match="1 MB"):
        parse_script("calm. " * 900_000)
    just_under = "Rest now.\n" * (MAX_SCRIPT_BYTES // 10)
    assert parse_script(just_under).scenes


_MEASURE_PEAK = """
import sys
from meditation.script import parse_script
from meditation.segments import plan_segments

def peak_kib():  # VmHWM, not ru_maxrss: a child starts with its parent's maximum
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

text = sys.stdin.read()
before = peak_kib()
plan_segments(parse_script(text), rate=0.9)
print(peak_kib() - before)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "unit",
    ["Let your shoulders soften, and notice the breath. ", "calm. ", "In. [breathe 4-4 cues] "],
)
@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads peak memory from /proc (Linux)"
)
def test_parsing_a_megabyte_keeps_memory_bounded(unit):
    """Peak memory grows in proportion to the script (the old parser grew by gigabytes on 5 MB)."""
    import subprocess
    import sys

    text = unit * (990_000 // len(unit))
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE_PEAK],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    growth_mb = int(out.stdout) / 1024
    assert 0 < growth_mb < 64, f"{growth_mb:.0f} MB for a 1 MB script"


def _read_in_thread(path):
    """read_script(path) in a thread: (finished within 5 s, the error or result)."""
    import threading

    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_catch(read_script, path)), daemon=True)
    worker.start()
    worker.join(5)
    return not worker.is_alive(), (outcome[0] if outcome else None)


def _catch(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the test inspects what came out
        return exc


def test_a_fifo_is_refused_without_being_read(tmp_path):
    import os

    fifo = tmp_path / "script.md"
    os.mkfifo(fifo)
    finished, error = _read_in_thread(fifo)
    if not finished:  # unblock the stuck reader so the test run can go on
        with open(fifo, "wb") as writer:
            writer.write(b"x")
    assert finished, "read_script blocked on a FIFO"
    assert isinstance(error, ScriptError) and "not a regular file" in str(error)
    assert str(error).startswith(f"{fifo}: ")


def test_devices_and_folders_are_refused(tmp_path):
    with pytest.raises(ScriptError, match="not a regular file"):
        read_script("/dev/null")
    with pytest.raises(ScriptError, match="is a folder"):
        read_script(tmp_path)


def test_the_cli_refuses_a_fifo_with_one_line_and_exit_2(tmp_path, capsys):
    import os

    from meditation.cli import main

    fifo = tmp_path / "in.md"
    os.mkfifo(fifo)
    code = main(["render", str(fifo), "-o", str(tmp_path / "out.wav"), "--progress", "off"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a regular file" in err
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize(
    "text, line",
    [
        ("🌊🌙✨\n\n🙏", 1),
        ("---\ntitle: x\n---\n\n...", 5),
        ("# Scene\n\n— — …\n\n[pause 2s]", 3),
        ("\u200b\u200d\u2060\ufeff", 1),
        ("   ", 0),
        ("# Only a heading\n\n[pause 3s]\n", 0),
    ],
    ids=["emoji", "dots", "dashes", "zero-width", "blank", "pauses"],
)
def test_a_script_with_nothing_a_voice_can_say_is_refused(text, line):
    with pytest.raises(ScriptError) as info:
        parse_script(text, path="s.md")
    message = str(info.value)
    assert "no text to speak" in message
    assert message.startswith(f"s.md:{line}:1: " if line else "s.md: ")


def test_one_speakable_word_among_emoji_is_enough():
    script = parse_script("🌊 Rest 🌊")
    assert script.scenes[0].items[0].text == "🌊 Rest 🌊"


@pytest.mark.parametrize(
    "text, col, fragment",
    [
        ("Rest [pause 3s now.", 6, "'[' is not closed"),
        ("Rest [pause [pause 2s] now.", 6, "'[' is not closed"),
        ("Rest <break time='2s' now.", 6, "not closed with '>'"),
        ("Rest </break> now.", 6, "unsupported tag </break>"),
        ('Rest <break time="2 s"/> now.', 6, None),
    ],
)
def test_unclosed_markup_is_an_error_and_lone_angle_brackets_are_text(text, col, fragment):
    if fragment is None:
        assert parse_script(text).scenes[0].items[1] == Pause(2.0, "pause", 1)
        return
    with pytest.raises(ScriptError) as info:
        parse_script(text, path="u.md")
    assert str(info.value).startswith(f"u.md:1:{col}: ") and fragment in str(info.value)


def test_a_lone_angle_bracket_is_spoken_text():
    for text in ("Hello there. <" + " " * 300, "1 < 2 and 3 > 2.", "I <3 you.", "a <> b."):
        (paragraph,) = parse_script(text).scenes[0].items
        assert paragraph.text == " ".join(text.split())


# --- guided breathing markup (issue 10, item 4) ---


def test_breathing_patterns_give_their_phases():
    items = (
        parse_script(
            "Now. [breathe 4-7-8 x4]\n\n[breathe box 4 x3 cues]\n\n[breathe 4-6 x2]\n\n[breathe 4-0-8]\n\n[breathe]\n\n[breathe 8s]\n\nEnd."
        )
        .scenes[0]
        .items
    )
    exercises = [i for i in items if isinstance(i, Pause)]
    assert exercises[0].phases == (("in", 4.0), ("hold", 7.0), ("out", 8.0)) * 4
    assert exercises[0].seconds == 76.0 and not exercises[0].cues and exercises[0].in_paragraph
    assert exercises[1].phases == (("in", 4.0), ("hold", 4.0), ("out", 4.0), ("hold", 4.0)) * 3
    assert exercises[1].cues and not exercises[1].in_paragraph
    assert exercises[2].phases == (("in", 4.0), ("out", 6.0)) * 2
    assert exercises[3].phases == (("in", 4.0), ("out", 8.0))  # a zero hold is no hold
    assert exercises[4] == Pause(6.0, "breathe", 9) and exercises[5] == Pause(8.0, "breathe", 11)


@pytest.mark.parametrize(
    "markup, col, fragment",
    [
        ("[breathe 4-7-x x4]", 14, "bad breathing pattern 'x'"),
        ("[breathe 4-7-8-1-2]", 10, "2 to 4 lengths"),
        ("[breathe 4-70-8 x4]", 12, "70 s is out of range"),
        ("[breathe 4-7-8 x0]", 16, "x0 cycles is out of range"),
        ("[breathe 4-7-8 x4 x5]", 19, "unexpected 'x5'"),
        ("[breathe 4-7-8 please]", 16, "unexpected 'please'"),
        ("[breathe box]", 10, "needs a length"),
        ("[breathe box four x3]", 14, "bad breathing pattern 'four'"),
        ("[breathe 0-4]", 10, "0 s is out of range"),
        ("[breathe 8]", 1, "bad [breathe] length '8'"),
    ],
)
def test_bad_breathing_markup_points_at_the_bad_word(markup, col, fragment):
    with pytest.raises(ScriptError) as info:
        parse_script(f"Let us breathe.\n\n{markup}\n", path="b.md")
    assert str(info.value).startswith(f"b.md:3:{col}: "), str(info.value)
    assert fragment in str(info.value) and "[breathe 4-7-8 x4]" in str(info.value)


def test_the_readmes_own_angle_bracket_sentences_are_text():
    # "If a < b then rest." was refused: "tag is not closed".
    for text in ("If a < b then rest.", "If a<b then rest.", "So a < b > c holds.", "x <y"):
        (paragraph,) = parse_script(text).scenes[0].items
        assert paragraph.text == text
    # A known tag left open is still an error, and a complete unknown tag is refused.
    with pytest.raises(ScriptError, match="u.md:1:6: tag is not closed"):
        parse_script("Rest <break time='2s' now.", path="u.md")
    with pytest.raises(ScriptError, match="u.md:1:6: unsupported tag <emphasis>"):
        parse_script("Rest <emphasis>now</emphasis>.", path="u.md")


def test_a_front_matter_key_given_twice_is_refused_where_it_repeats():
    text = "---\nrate: 0.8\ntitle: T\nRate: 0.9\n---\nHello.\n"
    with pytest.raises(ScriptError) as info:
        parse_script(text, path="d.md")
    assert str(info.value) == "d.md:4:1: front matter key 'rate' is given twice (first on line 2)"
    # Spelled with a hyphen it is the same key.
    with pytest.raises(ScriptError, match="d.md:3:1: front matter key 'lead_in' is given twice"):
        parse_script("---\nlead_in: 2s\nlead-in: 3s\n---\nHi.\n", path="d.md")


@pytest.mark.parametrize("char", ["\x01", "\x02", "\x07", "\x0b", "\x1b", "\x7f", "\x85"])
def test_control_characters_are_refused_at_their_place(char):
    # \x01 and \x02 were spoken as '[' and '<' (they stand for the escapes \[ and \<).
    with pytest.raises(ScriptError) as info:
        parse_script(f"# A\n\nBreathe {char}in.\n", path="c.md")
    assert str(info.value).startswith(f"c.md:3:9: control character U+{ord(char):04X}")


def test_tabs_and_every_newline_style_are_still_text():
    script = parse_script("Breathe\tin.\r\nRest.\rHere.\n")
    assert "Breathe in." in script.scenes[0].items[0].text.replace("\t", " ")
