"""`meditation batch` at the edges (issue 8): nothing overwritten that the tool did not write,
folders checked before rendering, bounded manifests and workers, one line for every refusal."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from waiting import wait_until

from meditation.batch import expand_manifest
from meditation.batch.runner import _cap_jobs, _default_jobs
from meditation.cli import main

SCRIPT = "# Settle\n\nSoft light fills the quiet room. Rest here.\n"  # words no other test speaks: the speech cache is shared
FAST = 'voice = "pyttsx3"\nlead_in = 1\ntail = 1\nsoundscape = "none"\n'


def _snapshot(folder):
    """Every file under the folder with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def _refused(folder, argv, capsys, *needles):
    """Run the CLI; it must refuse in one line naming what it names, and change no byte under folder."""
    before = _snapshot(folder)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert _snapshot(folder) == before  # no byte changed, nothing added (no temp file either)
    return err


# --- item 1: data loss -----------------------------------------------------------------


def test_an_output_that_is_the_script_is_refused(folder, capsys):
    (folder / "in.wav").write_text(SCRIPT, encoding="utf-8")  # a script that happens to end in .wav
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "{script}.wav"\n[defaults]\nscript = "in.wav"\n' + FAST, encoding="utf-8"
    )
    for extra in ([], ["--dry-run"], ["--force"]):
        _refused(
            folder,
            ["batch", str(manifest), "--progress", "off", *extra],
            capsys,
            "in.wav is the script of",
            "never overwritten",
        )


def test_a_sidecar_that_is_the_script_or_the_manifest_is_refused(folder, capsys):
    (folder / "calm.json").write_text(SCRIPT, encoding="utf-8")  # a script named like a sidecar
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "{script}.wav"\n[defaults]\nscript = "calm.json"\n' + FAST, encoding="utf-8"
    )
    _refused(folder, ["batch", str(manifest)], capsys, "sidecar", "calm.json is the script of")
    # A manifest named like the sidecar of one of its outputs.
    odd = folder / "7.json"
    odd.write_text(
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\nseed = 7\n' + FAST,
        encoding="utf-8",
    )
    _refused(folder, ["batch", str(odd)], capsys, "7.json is the manifest")


def test_a_users_own_files_are_never_replaced(folder, capsys):
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\nseed = 3\n' + FAST,
        encoding="utf-8",
    )
    # The user's own notes, named like the sidecar.
    (folder / "3.json").write_text('{"my": "notes"}\n', encoding="utf-8")
    _refused(
        folder,
        ["batch", str(manifest)],
        capsys,
        "sidecar",
        "3.json' already exists and was not written by meditation",
    )
    (folder / "3.json").unlink()
    # The user's own recording, named like the output, without a sidecar.
    (folder / "3.wav").write_bytes(b"RIFF my own recording")
    _refused(
        folder,
        ["batch", str(manifest), "--force"],
        capsys,
        "3.wav' already exists and was not written by meditation",
    )
    # A sidecar that looks like ours is no proof either: the user may have copied it there.
    (folder / "3.json").write_text(
        json.dumps({"output": str(folder / "3.wav"), "settings": {}, "output_bytes": 21}),
        encoding="utf-8",
    )
    _refused(
        folder,
        ["batch", str(manifest)],
        capsys,
        "3.wav' already exists and was not written by meditation",
    )


@pytest.mark.slow
def test_outputs_written_by_the_batch_are_replaced_and_nothing_else_is_touched(folder, capsys):
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "out/{seed}.wav"\n[defaults]\nscript = "short.md"\nseed = 3\n' + FAST,
        encoding="utf-8",
    )
    (folder / "notes.json").write_text("{}", encoding="utf-8")
    assert main(["batch", str(manifest), "--progress", "off"]) == 0
    mine = _snapshot(folder)
    first = (folder / "out" / "3.wav").stat().st_mtime_ns
    assert main(["batch", str(manifest), "--force", "--progress", "off"]) == 0  # ours: replaced
    assert (folder / "out" / "3.wav").stat().st_mtime_ns != first
    after = _snapshot(folder)
    assert after.keys() == mine.keys()  # no temp file, nothing new
    assert {k: v for k, v in after.items() if not k.startswith("out/3.")} == {
        k: v for k, v in mine.items() if not k.startswith("out/3.")
    }
    capsys.readouterr()


# --- item 4: folders checked before rendering -----------------------------------------------


def test_an_output_subfolder_taken_by_a_file_is_refused_before_rendering(folder, capsys):
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "{voice}/{seed}.wav"\n[defaults]\nscript = "short.md"\n' + FAST, encoding="utf-8"
    )
    (folder / "pyttsx3").write_text("a file where a folder should be", encoding="utf-8")
    for extra in ([], ["--dry-run"]):
        err = _refused(
            folder,
            ["batch", str(manifest), "--progress", "off", *extra],
            capsys,
            "pyttsx3 is a file, not a folder",
        )
        assert "FAILED" not in err and "FileExistsError" not in err


def test_an_out_dir_taken_by_a_file_or_read_only_is_refused(folder, capsys):
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\n' + FAST, encoding="utf-8"
    )
    (folder / "taken").write_text("x", encoding="utf-8")
    _refused(
        folder, ["batch", str(manifest), "--out-dir", str(folder / "taken")], capsys, "is a file"
    )
    if os.geteuid() != 0:  # root writes anywhere
        locked = folder / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            _refused(
                folder,
                ["batch", str(manifest), "--out-dir", str(locked / "new")],
                capsys,
                "permission denied",
            )
        finally:
            locked.chmod(0o755)


# --- item 14: batch details -------------------------------------------------------------------


@pytest.mark.slow
def test_a_missing_out_dir_is_made_and_a_failure_is_reported_once(folder, capsys):
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "{name}.wav"\n[defaults]\nscript = "short.md"\n'
        + FAST
        + '[[variants]]\nname = "ok"\n[[variants]]\nname = "hour"\nduration = "1h"\n',
        encoding="utf-8",
    )
    out_dir = folder / "new" / "deeper"
    assert (
        main(["batch", str(manifest), "--out-dir", str(out_dir), "--progress", "off", "-j", "1"])
        == 1
    )
    out, err = capsys.readouterr()
    assert (out_dir / "ok.wav").is_file() and (out_dir / "ok.json").is_file()
    assert (out + err).count("hour") == 1, (out, err)  # one line for the failure, not two
    assert "failed: hour: duration 3600s" in err  # the key the manifest wrote (18.19)
    assert out.strip().splitlines()[-1] == "1 rendered, 1 failed, 0 skipped"


def test_a_defaults_only_manifest_is_one_file_named_after_its_script(folder):
    manifest = folder / "m.toml"
    manifest.write_text('[defaults]\nscript = "short.md"\n' + FAST, encoding="utf-8")
    (variant,) = expand_manifest(manifest)
    assert variant.settings.output == folder / "short.mp3"


def test_a_manifest_nested_thousands_deep_is_one_line(folder, capsys):
    manifest = folder / "m.toml"
    manifest.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    _refused(folder, ["batch", str(manifest)], capsys, "m.toml: manifest is nested too deeply")


# --- item 9: bounded size and workers ---------------------------------------------------------


def test_a_million_variant_manifest_is_refused_in_one_line(folder, capsys):
    seeds = ", ".join(map(str, range(1000)))
    rates = ", ".join(f"{0.5 + i / 1000:g}" for i in range(1000))
    manifest = folder / "m.toml"
    manifest.write_text(
        f'output = "{{seed}}-{{rate}}.wav"\n[defaults]\nscript = "short.md"\n[matrix]\nseed = [{seeds}]\nrate = [{rates}]\n',
        encoding="utf-8",
    )
    err = _refused(
        folder,
        ["batch", str(manifest), "--dry-run"],
        capsys,
        "makes 1,000,000 variants",
        "--max-variants 1000000",
    )
    assert "limit of 10,000" in err
    _refused(
        folder,
        ["batch", str(manifest), "--dry-run", "--max-variants", "999999"],
        capsys,
        "limit of 999,999",
    )


def test_the_variant_limit_is_an_option(folder, capsys):
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\n'
        + FAST
        + "[matrix]\nseed = [1, 2, 3]\n",
        encoding="utf-8",
    )
    _refused(
        folder,
        ["batch", str(manifest), "--dry-run", "--max-variants", "2"],
        capsys,
        "makes 3 variants",
    )
    assert main(["batch", str(manifest), "--dry-run", "--max-variants", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_workers_are_capped_at_two_per_core_with_a_note(folder, capsys):
    cores = _default_jobs()
    assert _cap_jobs(1000, 20) == min(2 * cores, 20)
    assert "note: -j 1000" in capsys.readouterr().err
    assert _cap_jobs(None, 20) == min(cores, 20) and _cap_jobs(3, 1) == 1
    assert capsys.readouterr().err == ""  # no note when nothing was capped by the machine


# --- item 15: progress in human units ---------------------------------------------------------


@pytest.mark.slow
def test_batch_progress_shows_no_raw_floats(folder):
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\n'
        + FAST
        + "[matrix]\nseed = [1, 2]\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "meditation",
            "batch",
            str(manifest),
            "--progress",
            "on",
            "-j",
            "1000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "variants" in proc.stderr and "100%" in proc.stderr
    assert "note: -j 1000" in proc.stderr and proc.stderr.count("note:") == 1
    assert not re.findall(r"\d\.\d{3,}", proc.stderr), (
        proc.stderr
    )  # seconds with one decimal, or percent


# --- item 4: Ctrl-C during expansion ----------------------------------------------------------


def _ignores_sigint(pid):
    with open(f"/proc/{pid}/status") as f:
        ignored = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))
    return bool(ignored & (1 << (signal.SIGINT - 1)))


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_to_the_group_during_expansion_prints_one_line(folder):
    seeds = ", ".join(map(str, range(9000)))
    manifest = folder / "m.toml"
    manifest.write_text(
        f'output = "{{seed}}.wav"\n[defaults]\nscript = "short.md"\nvoice = "pyttsx3"\n[matrix]\nseed = [{seeds}]\n',
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "meditation", "batch", str(manifest), "--dry-run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # Expansion is under way once the voice's helper process is up (it lists the voices),
        # or soon after start (the helper may be gone already; 9,000 variants take longer).
        started = time.monotonic()

        def ready():
            if proc.poll() is not None:
                return True
            helpers = subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
            ).stdout.split()
            return (helpers or time.monotonic() > started + 3) and not _ignores_sigint(proc.pid)

        wait_until(ready, 60)
        assert proc.poll() is None, "expansion finished before the interrupt"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().count("\n") == 0 and "interrupted" in err

    def none_left():
        return subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True).returncode == 1

    assert wait_until(none_left, 10, poll_s=0.1)  # no helper left behind


# --- issue 18, item 13: kill -9 of a batch says nothing more ----------------------------------


def _session_commands(sid: int) -> list[str]:
    pids = subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout.split()
    commands = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                commands.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return commands


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_batch_leaves_no_leaked_semaphore_warning(folder):
    manifest = folder / "m.toml"
    manifest.write_text(
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\nvoice = "pyttsx3"\n'
        'soundscape = "none"\n[matrix]\nseed = [1, 2, 3, 4]\n',
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "meditation", "batch", str(manifest), "-j", "2", "--no-cache"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # The worker pools (and the semaphores of their queues) exist once a worker runs.
        wait_until(
            lambda: (
                proc.poll() is not None
                or any("spawn_main" in c for c in _session_commands(proc.pid))
            ),
            120,
        )
        assert proc.poll() is None, proc.stderr.read()
        tracker = [c for c in _session_commands(proc.pid) if "resource_tracker" in c]
        assert tracker, "the pools' semaphores are registered with a resource tracker"
        proc.kill()
        _, err = proc.communicate(timeout=60)
        # The tracker removes the dead batch's semaphores once the workers have gone, then exits.
        assert wait_until(lambda: not _session_commands(proc.pid), 60, poll_s=0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "leaked semaphore" not in err and "resource_tracker" not in err, err
    assert "Traceback" not in err, err


# --- issue 18, item 10: every file of every variant is checked up front ------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_side_files_covers_and_folders_are_checked_before_any_variant(folder, capsys):
    (folder / "notes.vtt").write_text("WEBVTT\n\nmy own notes\n")  # the user's file
    os.mkfifo(folder / "cover.png")
    cases = [
        (f'captions = "{folder / "notes.vtt"}"', "notes.vtt", "was not written by meditation"),
        (f'plot = "{folder / "short.md"}"', "short.md", "an input is never overwritten"),
        ('captions = "vtt"', "out.vtt", None),  # beside the output: fine, a control case
        ('cover = "/dev/zero"', "cover image '/dev/zero'", "is not a regular file"),
        ('cover = "cover.png"', "cover.png", "is not a regular file"),
    ]
    for line, named, problem in cases:
        manifest = folder / "m.toml"
        manifest.write_text(
            f'output = "out.mp3"\n[defaults]\nscript = "short.md"\n{FAST}{line}\n',
            encoding="utf-8",
        )
        if problem is None:
            assert main(["batch", str(manifest), "--dry-run"]) == 0
            assert "render" in capsys.readouterr().out
            continue
        for extra in (["--dry-run"], []):
            err = _refused(folder, ["batch", str(manifest), *extra], capsys, named, problem)
            assert "m.toml: " in err  # and the manifest is named
    manifest = folder / "m.toml"
    manifest.write_text(
        f'output = "out.mp3"\n[defaults]\nscript = "short.md"\n{FAST}', encoding="utf-8"
    )
    for extra in (["--dry-run"], []):
        _refused(
            folder,
            ["batch", str(manifest), "--out-dir", "/proc", *extra],
            capsys,
            "cannot write in '/proc'",
        )
