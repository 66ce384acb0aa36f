"""`meditation batch`: manifest expansion and validation, skip/resume, failures that
stay local, sidecars, byte-identical output, and Ctrl-C leaving no partial file."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from waiting import wait_until

from meditation.batch import expand_manifest, is_up_to_date, render_variant, sidecar_path
from meditation.cli import main
from meditation.errors import ExportError, ManifestError

SCRIPT = """---
title: Short test
---
# Arrive

Breathe in slowly. [pause 2s] And let it go.

# Rest

The river flows on, and on.
"""

FAST = 'voice = "pyttsx3"\nlead_in = 1\ntail = 1\n'


def _manifest(folder, text, name="variants.toml"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _writing(folder, at_least_bytes):
    """Whether a temporary output (``.name-XXXX.wav``) under the folder holds that much already."""
    for path in folder.glob(".*.wav"):
        try:
            if path.stat().st_size >= at_least_bytes:
                return True
        except FileNotFoundError:
            pass  # renamed into place meanwhile
    return False


def _hidden(folder):
    """Temporary files (``.name-XXXX``) left anywhere under the folder."""
    return [p for p in folder.rglob(".*") if p.is_file()]


# --- expansion and validation (nothing renders) -------------------------------------


def test_matrix_and_variants_expand_to_settings_objects(folder):
    path = _manifest(
        folder,
        'output = "{script}-{voice}-{rate}-{soundscape}-{name}.wav"\n'
        '[defaults]\nscript = "short.md"\nseed = 4\n'
        + FAST
        + '[matrix]\nrate = [0.9, 1.0]\nsoundscape = ["stream", "none"]\n'
        '[[variants]]\nname = "long"\nduration = "2m"\nsoundscape = "drone"\n',
    )
    variants = expand_manifest(path)
    assert len(variants) == 5
    names = [v.settings.output.name for v in variants]
    assert names[0] == "short-pyttsx3-0.9-stream-variant.wav"
    assert (
        names[-1] == "short-pyttsx3-0.9-drone-long.wav"
    )  # rate from the default, written as the setting
    long = variants[-1]
    assert long.name == "long" and long.settings.duration_s == 120 and long.settings.seed == 4
    assert long.settings.voice.startswith("pyttsx3:")  # resolved to a concrete voice
    assert long.settings.title == "Short test"  # front matter still applies
    assert {v.settings.rate for v in variants[:4]} == {0.9, 1.0}
    assert all(v.settings.script == folder / "short.md" for v in variants)


@pytest.mark.parametrize(
    "text, message",
    [
        ('output = "a.mp3"\n[defaults]\nspeed = 1\n', "[defaults]: unknown key 'speed'"),
        (
            'output = "{name}.mp3"\n[[variants]]\nname = "calm"\npause-scale = 2\n',
            "variant 'calm': unknown key 'pause-scale'; did you mean 'pause_scale'?",
        ),
        (
            'output = "{rate}.mp3"\n[matrix]\nrate = [0.9, "fast"]\n',
            "[matrix]: rate = 'fast': rate must be a number",
        ),
        (
            'output = "{name}.mp3"\n[[variants]]\nname = "quick"\nrate = 7\n',
            "variant 'quick': rate = 7: rate 7 is out of range",
        ),
        (
            'output = "{name}.mp3"\n[[variants]]\nname = "v"\nvoice = "piper:nobody"\n',
            "variant 'v': unknown voice 'piper:nobody'",
        ),
        (
            'output = "{name}.mp3"\n[[variants]]\nname = "v"\nsoundscape = "jungle"\n',
            "variant 'v': soundscape: unknown soundscape 'jungle'",
        ),
        (
            'output = "{name}.mp3"\n[[variants]]\nname = "v"\nsoundscape = "stream"\nlayers = ["river", "tuba"]\n',
            "variant 'v': layers: tuba not in soundscape",
        ),
        (
            'output = "{name}.mp3"\n[[variants]]\nname = "v"\nseed = 1.5\n',
            "variant 'v': seed = 1.5: seed must be a whole number",
        ),
        (
            'output = "{name}.mp3"\n[[variants]]\nname = "v"\nscript = "broken.md"\n',
            "variant 'v': ",
        ),
        (
            'output = "{name}.mp3"\n[[variants]]\nname = "v"\nscript = "missing.md"\n',
            "missing.md: no such script file",
        ),
        (
            'output = "{colour}.mp3"\n[defaults]\nseed = 1\n',
            "output template field {colour} is not a setting",
        ),
        ('output = "{seed}.aiff"\n[defaults]\nseed = 1\n', "must end in one of"),
        ('output = "../{seed}.mp3"\n[defaults]\nseed = 1\n', "must stay inside the output folder"),
        ("[matrix]\nseed = [1, 2]\n", "needs a top-level output name template"),
        (
            'output = "{seed:>5}.mp3"\n[defaults]\nseed = 1\n',
            "field {seed:>5} has a format spec or conversion; write {seed}",
        ),
        (
            'output = "{seed!r}.mp3"\n[defaults]\nseed = 1\n',
            "field {seed!r} has a format spec or conversion",
        ),
        ('output = "{seed.mp3"\n[defaults]\nseed = 1\n', "write literal braces as {{ and }}"),
        ('output = "{seed}}.mp3"\n[defaults]\nseed = 1\n', "write literal braces as {{ and }}"),
        ('output = "{seed}.mp3"\n[matrix]\nseed = 3\n', "[matrix] seed must be a non-empty list"),
        ('output = "{seed}.mp3"\njobs = 2\n', "unknown top-level key 'jobs'"),
        ('output = "{seed}.mp3"\n[defaults\n', "variants.toml"),
        ('output = "{seed}.mp3"\n', "nothing to render"),
    ],
)
def test_bad_manifests_are_refused_naming_variant_and_key(folder, text, message):
    (folder / "broken.md").write_text("Hello.\n[pasue 2s]\n", encoding="utf-8")
    path = _manifest(folder, text)
    with pytest.raises(ManifestError) as info:
        expand_manifest(path)
    assert message in str(info.value)
    if "broken.md" in text:
        assert "broken.md:2:1: unknown directive" in str(info.value)


def test_collisions_are_refused_before_anything_renders(folder, capsys):
    # The template leaves out the soundscape: two matrix cells would write one file.
    path = _manifest(
        folder,
        'output = "{script}-{rate}.wav"\n[defaults]\nscript = "short.md"\n'
        + FAST
        + '[matrix]\nrate = [0.9, 1.0]\nsoundscape = ["stream", "drone"]\n',
    )
    with pytest.raises(
        ManifestError,
        match=r"matrix #1 \(rate=0.9, soundscape=stream\).*would both write short-0.9.wav",
    ):
        expand_manifest(path)
    hand = _manifest(
        folder,
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\n'
        + FAST
        + '[[variants]]\nname = "a"\n[[variants]]\nname = "b"\nrate = 0.8\n',
        "hand.toml",
    )
    assert main(["batch", str(hand)]) == 2
    err = capsys.readouterr().err
    assert "variant 'b' and variant 'a' would both write 1.wav" in err and err.count("\n") == 1
    assert not list(folder.glob("*.wav")) and not _hidden(folder)


def test_bad_job_count_and_missing_manifest_exit_2(folder, capsys):
    assert main(["batch", str(folder / "nope.toml")]) == 2
    assert "no such manifest" in capsys.readouterr().err
    path = _manifest(folder, 'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\n' + FAST)
    assert main(["batch", str(path), "-j", "0"]) == 2
    assert "need at least one worker" in capsys.readouterr().err


# --- rendering ------------------------------------------------------------------------


def test_python_api_renders_one_variant_and_returns_its_sidecar(folder):
    path = _manifest(
        folder,
        'output = "{script}-{seed}.wav"\n[defaults]\nscript = "short.md"\nsoundscape = "none"\nseed = 2\n'
        + FAST,
    )
    (variant,) = expand_manifest(path)
    assert not is_up_to_date(variant)
    out, data = render_variant(variant)
    assert out == folder / "short-2.wav" and out.is_file()
    assert json.loads(sidecar_path(out).read_text()) == data
    assert (
        data["seed"] == 2 and data["version"] and data["settings"]["voice"].startswith("pyttsx3:")
    )
    assert data["settings"]["lead_in"] == 1.0 and data["settings"]["soundscape"] == "none"
    assert [s["text"] for s in data["timeline"]["segments"]] == [
        "Breathe in slowly.",
        "And let it go.",
        "The river flows on, and on.",
    ]
    assert data["loudness_lufs"] == pytest.approx(-16, abs=1) and data["true_peak_db"] <= -0.9
    assert data["output_bytes"] == out.stat().st_size
    assert is_up_to_date(variant)


@pytest.mark.slow
def test_batch_renders_skips_resumes_and_keeps_failures_local(folder, capsys):
    path = _manifest(
        folder,
        'output = "{name}-{soundscape}-{seed}.wav"\n'
        '[defaults]\nscript = "short.md"\nseed = 5\n'
        + FAST
        + '[matrix]\nsoundscape = ["stream", "drone"]\n'
        # Valid on paper; only after speaking is it clear the pauses cannot stretch to an hour.
        '[[variants]]\nname = "hour"\nduration = "1h"\nsoundscape = "none"\n'
        '[[variants]]\nname = "plain"\nsoundscape = "none"\nrate = 0.9\n',
    )
    code = main(["batch", str(path), "-j", "2", "--progress", "off"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.strip().splitlines()[-1] == "3 rendered, 1 failed, 0 skipped"
    assert "failed: hour: duration 3600s would stretch the pauses over 20×" in err
    wavs = sorted(p.name for p in folder.glob("*.wav"))
    assert wavs == ["plain-none-5.wav", "variant-drone-5.wav", "variant-stream-5.wav"]
    assert all(sidecar_path(folder / w).is_file() for w in wavs)
    assert not (folder / "hour-none-5.wav").exists() and not _hidden(folder)
    side = json.loads((folder / "variant-stream-5.json").read_text())
    assert side["settings"]["soundscape"] == "stream" and side["seed"] == 5
    assert side["timeline"]["scenes"][0]["layers"]  # the soundscape's layers, --timings format

    # A batch-rendered WAV equals the same variant rendered alone, byte for byte
    # (the batch used the speech cache, the single render does not).
    alone = folder / "alone.wav"
    assert (
        main(
            [
                "render",
                str(folder / "short.md"),
                "-o",
                str(alone),
                "--voice",
                "pyttsx3",
                "--lead-in",
                "1",
                "--tail",
                "1",
                "--soundscape",
                "stream",
                "--seed",
                "5",
                "--no-cache",
                "--progress",
                "off",
            ]
        )
        == 0
    )
    assert alone.read_bytes() == (folder / "variant-stream-5.wav").read_bytes()
    alone.unlink()
    capsys.readouterr()

    # Again: everything up to date is skipped; the failing variant fails again.
    stamps = {w: (folder / w).stat().st_mtime_ns for w in wavs}
    assert main(["batch", str(path), "--progress", "off"]) == 1
    out, _ = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "0 rendered, 1 failed, 3 skipped"
    assert {w: (folder / w).stat().st_mtime_ns for w in wavs} == stamps

    # Resume: a deleted output and a changed setting are rendered again, nothing else.
    (folder / "variant-drone-5.wav").unlink()
    path.write_text(
        path.read_text().replace("rate = 0.9", "rate = 0.9\nloudness = -18"), encoding="utf-8"
    )
    assert main(["batch", str(path), "--dry-run"]) == 0
    out, _ = capsys.readouterr()
    lines = {
        line.split()[-1].rsplit("/", 1)[-1]: line.split()[0] for line in out.strip().splitlines()
    }
    assert lines == {
        "variant-stream-5.wav": "up",
        "variant-drone-5.wav": "render",
        "hour-none-5.wav": "render",
        "plain-none-5.wav": "render",
    }
    assert main(["batch", str(path), "--progress", "off"]) == 1
    out, _ = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "2 rendered, 1 failed, 1 skipped"
    assert (folder / "variant-stream-5.wav").stat().st_mtime_ns == stamps["variant-stream-5.wav"]
    assert json.loads((folder / "plain-none-5.json").read_text())["settings"]["loudness"] == -18


def test_force_renders_again_and_out_dir_is_used(folder, capsys):
    out_dir = folder / "out"
    out_dir.mkdir()
    path = _manifest(
        folder,
        'output = "{voice}/{seed}.wav"\n[defaults]\nscript = "short.md"\nsoundscape = "none"\n'
        + FAST,
    )
    assert main(["batch", str(path), "--out-dir", str(out_dir), "--progress", "off"]) == 0
    target = out_dir / "pyttsx3" / "1.wav"  # a / in the template makes a sub-folder
    assert target.is_file() and sidecar_path(target).is_file()
    before = target.stat().st_mtime_ns
    capsys.readouterr()
    assert (
        main(["batch", str(path), "--out-dir", str(out_dir), "--force", "--progress", "off"]) == 0
    )
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 rendered, 0 failed, 0 skipped"
    assert target.stat().st_mtime_ns != before


def test_a_damaged_output_or_sidecar_is_stale_and_never_overwritten(folder):
    """A file changed since meditation wrote it is not provably ours: refused, byte for byte intact."""
    path = _manifest(
        folder,
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\nsoundscape = "none"\n' + FAST,
    )
    (variant,) = expand_manifest(path)
    out, _ = render_variant(variant)
    assert is_up_to_date(variant)
    with open(out, "r+b") as f:
        f.truncate(1000)  # an output that is not the one the sidecar describes
    assert not is_up_to_date(variant)
    # Changed since meditation wrote it: no longer provably ours, so it is not replaced.
    with pytest.raises(ExportError, match="1.wav.*was not written by meditation"):
        render_variant(variant)
    assert out.stat().st_size == 1000
    out.unlink()
    render_variant(variant)
    sidecar_path(out).write_text("{not json", encoding="utf-8")
    assert not is_up_to_date(variant)
    with pytest.raises(ExportError, match="was not written by meditation"):
        render_variant(variant)  # an edited sidecar is the user's now
    assert sidecar_path(out).read_text() == "{not json"
    sidecar_path(out).unlink()
    (folder / "short.md").write_text(SCRIPT.replace("slowly", "deeply"), encoding="utf-8")
    render_variant(variant)
    assert is_up_to_date(variant)
    (folder / "short.md").write_text(
        SCRIPT, encoding="utf-8"
    )  # the script changed: stale, and ours to replace
    assert not is_up_to_date(variant)
    render_variant(variant)
    assert is_up_to_date(variant)


# --- interrupt ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("target", ["group", "parent"])
def test_interrupt_stops_workers_and_leaves_no_partial_file(folder, target):
    """Ctrl-C on a terminal signals the whole process group; `kill -INT` only the parent."""
    path = _manifest(
        folder,
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\nsoundscape = "stream"\nduration = "90s"\n'
        + FAST
        + "[matrix]\nseed = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "meditation", "batch", str(path), "-j", "2", "--progress", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        # Wait until a render is writing: a temporary output file holds some audio.
        wait_until(lambda: _writing(folder, 64 * 1024) or proc.poll() is not None, 60)
        assert proc.poll() is None, proc.communicate()
        if target == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    assert not _hidden(folder), _hidden(folder)
    for wav in folder.glob("*.wav"):  # whatever finished is complete
        info = sf.info(str(wav))
        assert info.duration == pytest.approx(90, abs=1)

    # No worker (nor an engine's helper process) outlives the batch.
    def left():
        session = ["pgrep", "-a", "-s", str(proc.pid)]
        return subprocess.run(session, capture_output=True, text=True).stdout.strip()

    wait_until(lambda: not left(), 10, poll_s=0.2)
    assert not left()


def _writes_hidden_wav(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` holds a temporary ``.NAME.wav`` in ``folder`` open."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = Path(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if (
            target.parent == folder.resolve()
            and target.name.startswith(".")
            and ".wav" in target.name
        ):
            return True
    return False


@pytest.mark.slow
def test_a_worker_killed_mid_batch_fails_only_its_variant(folder):
    path = _manifest(
        folder,
        'output = "{seed}.wav"\n[defaults]\nscript = "short.md"\nsoundscape = "stream"\n'
        # Three minutes each, so a worker holds its temporary file open for a good part of a
        # second (a dozen seconds of audio is written in 20 ms, between two looks of a busy test).
        + 'duration = "3m"\n'
        + FAST
        + "[matrix]\nseed = [1, 2, 3, 4, 5, 6]\n",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "meditation", "batch", str(path), "-j", "2", "--progress", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # Kill the worker that is writing a variant (its temporary file open), not one that
        # may have just committed its file and not yet reported it: that variant would count
        # as failed with its file complete (a flake under load).
        writing: list[int] = []

        def a_worker_writes() -> bool:
            try:  # the batch's children, read straight from /proc: no pgrep between two looks
                workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            except OSError:
                workers = []
            writing[:] = [int(w) for w in workers if _writes_hidden_wav(int(w), folder)]
            return bool(writing) or proc.poll() is not None

        wait_until(a_worker_writes, 120, poll_s=0.01)
        assert writing and proc.poll() is None
        os.kill(writing[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1
    assert out.strip().splitlines()[-1] == "5 rendered, 1 failed, 0 skipped"
    assert "the worker process died" in err
    assert len(list(folder.glob("*.wav"))) == 5 and not _hidden(folder)
