"""File safety: no output is an input, another output, a folder or a user's file; checked before any speech."""

import json
import os
import struct
import subprocess
import sys
import unicodedata
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meditation.cli import main
from meditation.errors import MeditationError
from meditation.files import atomic_write_text, check_name, record_written, written_by_us

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
        (["--timings", str(folder / "taken" / "t.json")], "taken' is not a folder"),
        (["--timings", str(folder / "taken" / "sub" / "t.json")], "which is a file"),
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


# --- issue 18, item 1: a file name cannot forge the ledger -------------------------


def _old_style_identity(path: Path) -> str:
    st = path.stat()
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns}"


def test_a_name_with_a_newline_cannot_forge_the_ledger(folder, capsys):
    script = folder / "in.txt"
    script.write_text(SCRIPT)
    precious = folder / "precious.wav"
    precious.write_bytes(b"RIFF the user's own recording")
    # The attack of issue 18: a record for the user's file smuggled in after a newline.
    forged = f"inj\n{_old_style_identity(precious)} {precious}\n.wav"
    _refused(folder, capsys, [str(script), "-o", str(folder / forged)], "control character")
    for name in ("x\t.wav", "x\x1b[2J.wav", "x\x85.wav"):
        _refused(folder, capsys, [str(script), "-o", str(folder / name)], "control character")
    for option in ("--timings", "--captions", "--plot", "--stems"):
        _refused(
            folder,
            capsys,
            [str(script), "-o", str(folder / "o.wav"), option, str(folder / "t\n.json")],
            f"{option} ",
        )
    _refused(folder, capsys, [str(script), "-o", str(precious)], "was not written by meditation")
    assert precious.read_bytes() == b"RIFF the user's own recording"


def test_a_record_names_its_path_so_another_files_identity_is_not_enough(tmp_path):
    ours, theirs = tmp_path / "ours.wav", tmp_path / "theirs.wav"
    ours.write_bytes(b"x")
    record_written(ours)
    # The user's file takes ours's place on disk (same inode, size and time): the path differs.
    os.rename(ours, theirs)
    assert not written_by_us(theirs)


def test_an_old_format_ledger_is_not_trusted(tmp_path, monkeypatch):
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("MEDITATION_STATE_DIR", str(state))
    mine = tmp_path / "mine.wav"
    mine.write_bytes(b"user")
    (state / "written.log").write_text(f"{_old_style_identity(mine)} {mine}\n")
    (state / "written.jsonl").write_text(f'{_old_style_identity(mine)} {mine}\n{{"path": 1}}\n')
    assert not written_by_us(mine)


_INJECTIONS = st.sampled_from(
    [
        "\n{old} {path}\n",
        "\n{json}\n",
        '", "dev": 0}}\n{json}\n{{"x": "',
        "\r{old} {path}",
        "\u2028{json}\u2028",
    ]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    prefix=st.text(max_size=40),
    injection=_INJECTIONS,
    suffix=st.text(max_size=240),
)
def test_the_ledger_never_attributes_a_file_it_did_not_write(tmp_path, prefix, injection, suffix):
    """Whatever the name of a file we write (control characters, newlines, long, unicode), no other file becomes ours."""
    folder = tmp_path / "names"
    folder.mkdir(exist_ok=True)
    victim = folder / "victim.wav"
    victim.write_bytes(b"the user's")
    st_ = victim.stat()
    record = {
        "dev": st_.st_dev,
        "ino": st_.st_ino,
        "size": st_.st_size,
        "mtime_ns": st_.st_mtime_ns,
        "path": str(victim),
    }
    name = (
        prefix
        + injection.format(old=_old_style_identity(victim), path=victim, json=json.dumps(record))
        + suffix
    )
    name = name.replace("/", "_").replace("\x00", "_")
    name = name.encode("utf-8", "surrogatepass")[:240].decode("utf-8", "ignore") + ".wav"
    target = folder / name
    try:
        check_name(target)
        refused = False
    except MeditationError:
        refused = True
    assert refused == any(unicodedata.category(c) == "Cc" for c in name)
    # The ledger itself must hold even for a name that reached it some other way.
    try:
        atomic_write_text(target, "ours")
    except (OSError, MeditationError):
        return  # the file system refused the name: nothing written, nothing recorded
    try:
        assert written_by_us(target)
        assert not written_by_us(victim)
        assert victim.read_bytes() == b"the user's"
    finally:
        target.unlink()


def test_a_manifest_output_template_with_a_newline_is_refused(folder, capsys):
    (folder / "in.txt").write_text(SCRIPT)
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "a\\n{seed}.wav"\n[defaults]\nscript = "in.txt"\nsoundscape = "none"\n'
    )
    before = _snapshot(folder.parent)
    assert main(["batch", str(manifest), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "output template" in err and "control character" in err
    assert _snapshot(folder.parent) == before


# --- issue 18, item 2: every input file is a regular file, read with a size cap ----------

ROOT = Path(__file__).resolve().parent.parent


def _run_cli(args, cwd, timeout=120):
    """The command in a process of its own: a read that blocks fails the test by its timeout instead of hanging it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "meditation", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def _png(path: Path, width: int, height: int) -> None:
    """A real, valid 1-bit PNG of any size, written without holding its pixels."""
    row = b"\x00" + bytes((width + 7) // 8)
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_every_input_file_is_regular_and_bounded(folder):
    (folder / "in.md").write_text(SCRIPT)
    (folder / "cover.md").write_text("---\ncover: /dev/zero\n---\nHello there.\n")
    for name in ("fifo.png", "fifo.wav", "fifo.json", "fifo.toml", "fifo.md"):
        os.mkfifo(folder / name)
    for name, size in (
        ("huge.png", 51_000_000),
        ("huge.json", 65_000_000),
        ("huge.toml", 5_000_000),
    ):
        with open(folder / name, "wb") as f:
            f.truncate(size)  # sparse: as large as it says, without the bytes on disk
    render = ["render", "in.md", "--voice", "pyttsx3", "--soundscape", "none", "-o", "out.mp3"]
    special = "is not a regular file"
    cases = [
        ([*render, "--cover", "/dev/zero"], "cover image '/dev/zero' " + special),
        ([*render, "--cover", "fifo.png"], "cover image 'fifo.png' " + special),
        ([*render, "--cover", "huge.png"], "cover image 'huge.png' is larger than 50 MB"),
        ([*render[:1], "cover.md", *render[2:]], "cover image '/dev/zero' " + special),
        ([*render, "--bed", "/dev/zero"], "recording '/dev/zero' is a character device"),
        ([*render, "--bed", "fifo.wav"], "is a named pipe (FIFO)"),
        ([*render[:-4], "--soundscape", "fifo.toml", "-o", "out.mp3"], "fifo.toml: " + special),
        ([*render[:-4], "--soundscape", "huge.toml", "-o", "out.mp3"], "is larger than 4 MB"),
        (["render", "fifo.md", *render[2:]], "fifo.md: " + special),
        (["plot", "/dev/zero", "-o", "p.png"], "timings file '/dev/zero' " + special),
        (["plot", "fifo.json", "-o", "p.png"], "timings file 'fifo.json' " + special),
        (["plot", "huge.json", "-o", "p.png"], "is larger than 64 MB"),
        (["batch", "/dev/zero"], "/dev/zero: " + special),
        (["batch", "fifo.toml"], special),
        (["batch", "huge.toml"], "is larger than 4 MB"),
    ]
    before = _snapshot(folder)
    for args, expected in cases:
        result = _run_cli(["--progress", "off", *args], folder, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and expected in result.stderr, (args, result.stderr)
        assert _snapshot(folder) == before, args  # no byte changed, nothing left


def test_a_huge_cover_is_refused_from_its_header_without_a_warning(folder):
    (folder / "in.md").write_text(SCRIPT)
    _png(folder / "big.png", 12000, 12000)
    _png(folder / "bomb.png", 20000, 20000)
    before = _snapshot(folder)
    for name, size in (("big.png", "12000×12000"), ("bomb.png", "20000×20000")):
        result = _run_cli(
            [
                "render",
                "in.md",
                "--voice",
                "pyttsx3",
                "--soundscape",
                "none",
                "--cover",
                name,
                "-o",
                "o.mp3",
            ],
            folder,
        )
        assert result.returncode == 2
        assert result.stderr == (
            f"meditation: error: cover image {name!r} is {size} pixels; use at most 10000×10000\n"
        )  # not "damaged", and no DecompressionBombWarning before it
        assert _snapshot(folder) == before


# --- issue 18, item 11: a refused or failed run leaves none of its outputs ---------------


@pytest.fixture
def full_disk(tmp_path):
    """A tiny tmpfs, filled to a few kB: any real file written there fails with ENOSPC (needs root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with open(mount / "filler", "wb") as f:
            try:
                f.write(bytes(256 * 1024))
            except OSError:
                pass
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


_RENDER = ["render", "--progress", "off", *"--voice pyttsx3 --soundscape none".split()]
_SHORT = ["--lead-in", "0.5", "--tail", "0.5"]


def test_stems_named_like_the_output_are_refused_and_leave_no_folder(folder, capsys):
    script = folder / "ok.md"
    script.write_text(SCRIPT)
    out = folder / "o.wav"
    _refused(folder, capsys, [str(script), "--stems", str(out), "-o", str(out)], "is also given as")
    assert not out.exists()


def test_a_full_disk_writing_the_plot_leaves_none_of_the_runs_outputs(folder, full_disk, capsys):
    script = folder / "ok.md"
    script.write_text(SCRIPT)
    out, timings, captions = folder / "out.wav", folder / "t.json", folder / "c.vtt"
    # An earlier render of ours: the failed run must put it back byte for byte.
    assert main([*_RENDER, str(script), *_SHORT, "-o", str(out)]) == 0
    capsys.readouterr()
    before, disk_before = _snapshot(folder.parent), _snapshot(full_disk)
    code = main(
        [
            *_RENDER,
            str(script),
            *_SHORT,
            "--seed",
            "7",
            "-o",
            str(out),
            "--timings",
            str(timings),
            "--captions",
            str(captions),
            "--plot",
            str(full_disk / "plan.png"),
            "--stems",
            str(folder / "new" / "stems"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err == f"meditation: error: disk full writing {full_disk / 'plan.png'}\n"
    assert _snapshot(folder.parent) == before  # no byte changed, nothing added
    assert _snapshot(full_disk) == disk_before
    assert not (folder / "new").exists()  # the folders it made are gone too
    assert written_by_us(out)  # the old file is ours again, as recorded


def test_stems_on_a_full_disk_leave_no_folder(folder, full_disk, capsys):
    script = folder / "ok.md"
    script.write_text(SCRIPT)
    before = _snapshot(folder)  # the speech cache beside it may grow: speech is not an output
    code = main(
        [
            *_RENDER,
            str(script),
            *_SHORT,
            "-o",
            str(folder / "o.wav"),
            "--stems",
            str(full_disk / "s"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("meditation: error: disk full writing ")
    assert _snapshot(folder) == before and sorted(folder.iterdir()) == [script]
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_an_output_in_a_missing_folder_makes_it(folder, capsys):
    script = folder / "ok.md"
    script.write_text(SCRIPT)
    out = folder / "a" / "b" / "x.mp3"
    assert main([*_RENDER, str(script), *_SHORT, "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.exists() and written_by_us(out)


# --- issue 18, item 19: --force replaces a file the user says is theirs, never an input ---


def test_force_replaces_a_users_file_but_never_an_input(folder, capsys):
    script = folder / "ok.wav"  # a script that happens to end in .wav
    script.write_text(SCRIPT)
    mine = folder / "mine.wav"
    mine.write_bytes(b"RIFF my old take")
    _refused(folder, capsys, [str(script), "-o", str(mine)], "give --force if it may be replaced")
    _refused(folder, capsys, [str(script), "-o", str(script), "--force"], "is an input of this run")
    assert main([*_RENDER, str(script), *_SHORT, "-o", str(mine), "--force"]) == 0
    assert (
        mine.read_bytes()[:4] == b"RIFF" and len(mine.read_bytes()) > 1000 and written_by_us(mine)
    )
    assert sorted(p.name for p in folder.iterdir()) == ["mine.wav", "ok.wav"]  # no temporary left
