"""File safety: no output is an input, another output, a folder or a user's file; checked before any speech."""

import os
from pathlib import Path

import pytest

from meditation.cli import main
from meditation.files import record_written, written_by_us

SCRIPT = "Hello there.\n"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    # An empty speech cache of its own: after a refusal it must still be empty (nothing was synthesized).
    monkeypatch.setenv("MEDITATION_CACHE_DIR", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    return work


def _snapshot(root: Path) -> dict:
    # eSpeak's list of voices is kept in the cache folder when a voice is resolved; it is not speech.
    return {
        p: p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith("espeak-voices-")
    }


def _refused(folder, capsys, args, expected):
    before = _snapshot(folder.parent)
    code = main(
        ["render", "--progress", "off", "--voice", "pyttsx3", "--soundscape", "none", *args]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("meditation: error: ")
    assert expected in err
    assert (
        _snapshot(folder.parent) == before
    )  # not one byte changed, no file added (no temp, no cache entry)


def test_an_output_that_is_the_script_is_refused(folder, capsys):
    script = folder / "in.wav"
    script.write_text(SCRIPT)
    _refused(folder, capsys, [str(script), "-o", str(script)], "is an input of this run")


def test_timings_onto_the_script_or_the_audio_are_refused(folder, capsys):
    script = folder / "in.txt"
    script.write_text(SCRIPT)
    _refused(
        folder,
        capsys,
        [str(script), "-o", str(folder / "out.mp3"), "--timings", str(script)],
        "--timings",
    )
    _refused(
        folder,
        capsys,
        [str(script), "-o", str(folder / "out.mp3"), "--timings", str(folder / "out.mp3")],
        "is also given as --output",
    )


def test_a_hard_link_to_the_script_is_the_script(folder, capsys):
    script = folder / "in.txt"
    script.write_text(SCRIPT)
    os.link(script, folder / "link.wav")
    _refused(
        folder, capsys, [str(script), "-o", str(folder / "link.wav")], "is an input of this run"
    )


def test_a_users_own_file_is_never_replaced(folder, capsys):
    script = folder / "in.txt"
    script.write_text(SCRIPT)
    mine = folder / "song.mp3"
    mine.write_bytes(b"ID3 my own music")
    _refused(folder, capsys, [str(script), "-o", str(mine)], "was not written by meditation")
    notes = folder / "notes.json"
    notes.write_text("{}")
    _refused(
        folder,
        capsys,
        [str(script), "-o", str(folder / "x.wav"), "--timings", str(notes)],
        "was not written by meditation",
    )


def test_unwritable_places_are_refused_before_synthesis(folder, capsys):
    script = folder / "in.txt"
    script.write_text(SCRIPT)
    (folder / "taken").write_text("a file")
    (folder / "dir.json").mkdir()
    cases = [
        (["--timings", "/sys/timings.json"], "cannot write in '/sys'"),  # refused even for root
        (["--timings", str(folder / "dir.json")], "is a folder"),
        (["--timings", str(folder / "missing" / "t.json")], "does not exist"),
        (["--stems", str(folder / "taken" / "stems")], "taken' is not a folder"),
        (["--stems", str(folder / "taken")], "exists and is not a folder"),
        (["--stems", "/sys/stems"], "cannot write in '/sys'"),
    ]
    for extra, expected in cases:
        _refused(folder, capsys, [str(script), "-o", str(folder / "out.wav"), *extra], expected)


def test_a_stems_folder_holding_a_users_wav_is_refused(folder, capsys):
    script = folder / "in.txt"
    script.write_text(SCRIPT)
    stems = folder / "stems"
    stems.mkdir()
    (stems / "voice.wav").write_bytes(b"RIFF mine")
    _refused(
        folder,
        capsys,
        [str(script), "-o", str(folder / "out.wav"), "--stems", str(stems)],
        "voice.wav",
    )


def test_its_own_output_is_replaced_on_the_next_run(folder, capsys):
    script = folder / "in.txt"
    script.write_text(SCRIPT)
    out, timings = folder / "out.wav", folder / "t.json"
    args = [
        "render",
        "--progress",
        "off",
        "--voice",
        "pyttsx3",
        "--soundscape",
        "none",
        "--lead-in",
        "0.5",
        "--tail",
        "0.5",
    ]
    assert main([*args, str(script), "-o", str(out), "--timings", str(timings)]) == 0
    assert written_by_us(out) and written_by_us(timings)
    assert main([*args, str(script), "-o", str(out), "--timings", str(timings), "--seed", "2"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        "in.txt",
        "out.wav",
        "t.json",
    ]  # no temp files


def test_a_recorded_file_edited_since_is_no_longer_ours(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"ours")
    record_written(path)
    assert written_by_us(path)
    path.write_bytes(b"edited by the user")
    assert not written_by_us(path)
