"""Bad input: one line on stderr, exit status 2, no traceback, no output file touched."""

import subprocess
import sys

import pytest

from meditation.cli import main

GOOD = "# One\n\nBreathe in.\n"


def _case(tmp_path, name):
    good = tmp_path / "good.md"
    good.write_text(GOOD, encoding="utf-8")
    out = tmp_path / "out.mp3"
    cases = {
        "missing script": ([str(tmp_path / "nope.md"), "-o", str(out)], "no such script file"),
        "empty script": (
            [str(_write(tmp_path / "empty.md", "")), "-o", str(out)],
            "no text to speak",
        ),
        "binary file": (
            [str(_write(tmp_path / "bin.md", b"\x89PNG\r\n\x1a\n\x00\x00")), "-o", str(out)],
            "binary file",
        ),
        "bad markup": (
            [str(_write(tmp_path / "bad.md", "Hello.\n[pasue 2s]\n")), "-o", str(out)],
            "bad.md:2:1: unknown directive",
        ),
        "unknown voice": (
            [str(good), "-o", str(out), "--voice", "piper:nobody"],
            "unknown voice 'piper:nobody'; known voices: piper:joe",
        ),
        "unknown engine": (
            [str(good), "-o", str(out), "--voice", "festival"],
            "unknown voice 'festival'",
        ),
        "rate out of range": (
            [str(good), "-o", str(out), "--rate", "7"],
            "--rate 7 is out of range",
        ),
        "pause scale out of range": (
            [str(good), "-o", str(out), "--pause-scale", "-1"],
            "--pause-scale -1 is out of range",
        ),
        # A missing output folder is made (issue 18, item 19); one under a file cannot be.
        "output folder under a file": (
            [str(good), "-o", str(tmp_path / "good.md" / "dir" / "x.mp3")],
            "which is a file, not a folder",
        ),
        "unknown format": (
            [str(good), "-o", str(tmp_path / "out.aiff")],
            "unknown output format '.aiff'",
        ),
        "bad front matter value": (
            [str(_write(tmp_path / "fm.md", "---\nrate: fast\n---\nHi.\n")), "-o", str(out)],
            "fm.md:2:1: rate must be a number",
        ),
        "unknown soundscape": (
            [str(good), "-o", str(out), "--soundscape", "jungle"],
            "unknown soundscape 'jungle'",
        ),
        "not a number": (
            [str(good), "-o", str(out), "--rate", "fast"],
            "--rate must be a number, not 'fast'",
        ),
    }
    return cases[name], out


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


CASES = [
    "missing script",
    "empty script",
    "binary file",
    "bad markup",
    "unknown voice",
    "unknown engine",
    "rate out of range",
    "pause scale out of range",
    "output folder under a file",
    "unknown format",
    "bad front matter value",
    "unknown soundscape",
    "not a number",
]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_fails_cleanly_and_leaves_no_output(name, tmp_path, capsys):
    (args, expected), out = _case(tmp_path, name)
    before = set(tmp_path.rglob("*"))
    code = main(["render", "--progress", "off", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("meditation: error: ")
    assert expected in err
    assert "Traceback" not in err
    assert set(tmp_path.rglob("*")) == before  # nothing written, not even a temporary file


@pytest.mark.parametrize("name", ["rate out of range", "bad markup", "unknown voice"])
def test_failed_run_leaves_an_existing_output_unchanged(name, tmp_path, capsys):
    (args, _), out = _case(tmp_path, name)
    out.write_bytes(b"previous render")
    assert main(["render", "--progress", "off", *args]) == 2
    assert out.read_bytes() == b"previous render"


@pytest.mark.slow
def test_console_entry_point_prints_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "meditation", "render", str(tmp_path / "missing.md")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"meditation: error: {tmp_path / 'missing.md'}: no such script file"
    ]
    assert result.stdout == ""


def test_a_reader_that_stops_early_gets_no_traceback():
    """`meditation voices | head -1`: the pipe closes under the tool, which ends quietly."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "meditation", "voices"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before the tool has listed anything: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and err == ""


# --- issue 18, item 13 (file-ish parts) ------------------------------------------------

_QUICK = ["--voice", "pyttsx3", "--soundscape", "none", "--lead-in", "0.5", "--tail", "0.5"]


def test_an_empty_voice_name_is_refused(tmp_path, capsys):
    script = _write(tmp_path / "ok.md", "Hello there.\n")
    code = main(["render", str(script), "--voice", "pyttsx3:", "-o", str(tmp_path / "o.wav")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "voice 'pyttsx3:' has no name after ':'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.md"]


@pytest.mark.parametrize(
    "args",
    [["--title", "cache", "{script}"], ["{script}", "--title", "voices"]],
    ids=["title-before-script", "title-after-script"],
)
def test_a_title_that_is_a_command_name_is_a_title(tmp_path, capsys, args):
    script = _write(tmp_path / "ok.md", "Hello there.\n")
    out = tmp_path / "o.wav"
    argv = [a.format(script=script) for a in args]
    assert main(["--progress", "off", *argv, *_QUICK, "-o", str(out)]) == 0, capsys.readouterr()
    assert out.exists()


def test_a_long_legal_output_name_is_written(tmp_path, capsys):
    script = _write(tmp_path / "ok.md", "Hello there.\n")
    name = "a" * 246 + ".wav"  # 250 bytes: legal; its temporary name must not overflow
    code = main(["render", "--progress", "off", str(script), *_QUICK, "-o", str(tmp_path / name)])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, "ok.md"]  # no temporary left


# --- issue 18, item 19 (parts) ----------------------------------------------------------


def test_a_cover_on_a_wav_output_is_refused_not_dropped(tmp_path, capsys):
    script = _write(tmp_path / "ok.md", "Hello there.\n")
    cover = tmp_path / "c.png"
    from PIL import Image  # noqa: PLC0415 - only this test draws a picture

    Image.new("RGB", (8, 8)).save(cover)
    code = main(["render", str(script), "--cover", str(cover), "-o", str(tmp_path / "o.wav")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "a WAV file carries no cover art" in err
    assert not (tmp_path / "o.wav").exists()


def test_cache_without_an_action_and_its_help_explain_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDITATION_CACHE_DIR", str(tmp_path / "c"))
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"speech cache: {tmp_path / 'c'}") and "cache clear" in out
    with pytest.raises(SystemExit):
        main(["cache", "--help"])
    out = capsys.readouterr().out
    assert "Synthesized sentences are kept here" in out and "clear" in out


def test_ambient_help_speaks_of_ambience(capsys):
    with pytest.raises(SystemExit):
        main(["ambient", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for render_only in ("narration", "script", "lead-in", "voice and each layer", "pauses"):
        assert render_only not in out, render_only
    assert "--duration DUR the track's length" in out


def test_a_batch_error_names_the_key_the_manifest_wrote(tmp_path, capsys):
    _write(tmp_path / "ok.md", "Hello there.\n\nRest now.\n")
    manifest = _write(
        tmp_path / "m.toml",
        'output = "o.wav"\n[defaults]\nscript = "ok.md"\nvoice = "pyttsx3"\n'
        'soundscape = "none"\nduration = "3s"\nlead_in = 0.5\ntail = 0.5\n',
    )
    assert main(["batch", str(manifest), "--progress", "off", "-j", "1"]) == 1
    out, err = capsys.readouterr()
    assert "duration 3s is too short" in out + err and "--duration" not in out + err
    script = tmp_path / "ok.md"
    assert (
        main(["render", str(script), *_QUICK, "--duration", "3s", "-o", str(tmp_path / "x.wav")])
        == 2
    )
    assert "--duration 3s is too short" in capsys.readouterr().err


def test_an_extras_install_hint_names_this_source_folder_or_the_distribution():
    # Issue 18, item 15: "meditation" on the package index is an unrelated program.
    from pathlib import Path

    import meditation
    from meditation.errors import install_hint

    source = Path(meditation.__file__).resolve().parents[1]
    if (source / "pyproject.toml").is_file():
        assert install_hint("plot") == f'pip install "{source}[plot]"'
    else:
        assert install_hint("plot") == 'pip install "meditation-render[plot]"'
    assert '"meditation[' not in install_hint("studio")
