"""The studio under hostile use (issue 18): its folder is a wall, its address is what it listens on,
its queue keeps its word, and it leaves nothing behind.

Renders are real (the fast pyttsx3 voice, short sentences, WAV), as in test_studio_api.py.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf
from studio import processes_with, studio_client, studio_folder
from waiting import wait_until

from meditation.batch import expand_manifest
from meditation.batch.manifest import validate_variant
from meditation.studio import allowed_hosts
from meditation.studio.jobs import JobQueue

SHORT = """---
voice: pyttsx3
lead_in: 0.5
tail: 1
soundscape: none
---

# Arriving

Let your shoulders drop.
"""


@pytest.fixture
def folder(tmp_path):
    return studio_folder(tmp_path)


@pytest.fixture
def client(folder):
    with studio_client(folder) as c:
        yield c


def _post_bounded(client, path: str, body: dict, *, unblock: Path | None = None, within_s=60):
    """POST from a thread; if it has not answered in ``within_s`` (a FIFO was opened), unblock it and fail."""
    answer = {}
    thread = threading.Thread(target=lambda: answer.update(r=client.post(path, json=body)))
    thread.start()
    thread.join(within_s)
    if thread.is_alive():
        if unblock is not None:
            os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))  # let the reader go
        thread.join(30)
        pytest.fail(f"{path} opened {unblock} (it hung reading it)")
    return answer["r"]


def _studio(tmp_path: Path, *args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "meditation", "studio", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


# --- item 3: the folder is a wall; the address is what is bound -----------------------


def test_a_file_outside_the_folder_is_refused_before_it_is_opened_and_the_error_reveals_nothing(
    client, folder
):
    outside = folder.parent / "outside"
    outside.mkdir()
    fifo = outside / "bed.wav"
    os.mkfifo(fifo)  # opening it to read would hang: the request would never answer
    (outside / "real.wav").write_bytes(b"RIFF" + bytes(40))
    answers = {}
    for value in (str(fifo), str(outside / "real.wav"), str(outside / "missing.wav")):
        for key in ("bed", "cover"):
            text = SHORT.replace("tail: 1", f"tail: 1\n{key}: {value}")
            response = _post_bounded(
                client,
                "/api/jobs",
                {"kind": "render", "text": text, "values": {}, "format": "mp3"},
                unblock=fifo,
            )
            assert response.status_code == 403, response.text
            answers[(key, value)] = response.json()["error"].replace(value, "PATH")
    # Same words whether the file exists, is a FIFO or is missing: nothing is learnt about it.
    assert len({a for (k, _), a in answers.items() if k == "bed"}) == 1, answers
    assert "exist" not in str(answers) and "bytes" not in str(answers)
    # A preset in the folder may not reach out either: its recordings are checked before it loads.
    (folder / "evil.toml").write_text(f'name = "evil"\n[layers.rain]\nfile = "{fifo}"\n')
    (folder / "sly.toml").write_text('name = "sly"\n[layers.rain]\nfile = "../outside/bed.wav"\n')
    for preset in ("evil.toml", "sly.toml"):
        text = SHORT.replace("soundscape: none", f"soundscape: {preset}")
        response = _post_bounded(
            client,
            "/api/jobs",
            {"kind": "render", "text": text, "values": {}, "format": "mp3"},
            unblock=fifo,
        )
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error.startswith(f"{preset}: layer 'rain': ") and "exist" not in error, error
    names = [p["name"] for p in client.get("/api/options").json()["presets"]]  # lists, not opens
    assert "evil.toml" not in names and "sly.toml" not in names
    assert not client.studio["queue"].jobs


def test_a_bed_named_in_front_matter_is_found_in_the_studio_folder_not_the_servers_cwd(
    client, folder, rng
):
    sf.write(folder / "rain.wav", 0.1 * rng.standard_normal((3 * 8000, 1)), 8000)
    assert not (Path.cwd() / "rain.wav").exists()
    text = SHORT.replace("tail: 1", "tail: 1\nbed: rain.wav")
    response = client.post(
        "/api/jobs", json={"kind": "render", "text": text, "values": {}, "format": "wav"}
    )
    assert response.status_code == 202, response.text
    client.post(f"/api/jobs/{response.json()['id']}/cancel")


def test_the_host_allow_list_holds_what_the_server_listens_on():
    psutil = pytest.importorskip("psutil")
    lan = sorted(
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family == socket.AF_INET
    )
    everywhere = allowed_hosts("0.0.0.0", "0.0.0.0", 8765)
    for address in lan:
        assert f"{address}:8765" in everywhere
    assert f"{socket.gethostname().lower()}:8765" in everywhere
    assert "localhost:8765" in everywhere
    here = allowed_hosts("127.0.0.1", "127.0.0.1", 8765)
    assert sorted(here) == ["127.0.0.1:8765", "localhost:8765"]
    # Bound to one LAN address: that address only, no loopback name (nothing listens there).
    others = [a for a in lan if not a.startswith("127.")]
    if others:
        assert allowed_hosts(others[0], others[0], 8765) == [f"{others[0]}:8765"]


def test_a_lan_browser_reaches_a_wildcard_studio_and_only_the_token_lets_it_in(tmp_path):
    httpx = pytest.importorskip("httpx2")

    psutil = pytest.importorskip("psutil")
    lan = [
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    if not lan:
        pytest.skip("this machine has no address but loopback")
    process = _studio(tmp_path, "--host", "0.0.0.0", "--dir", str(tmp_path))
    try:
        line = process.stdout.readline()
        base, token = line.split()[2].split("/?token=")
        port = base.rsplit(":", 1)[1]
        lan_base = f"http://{lan[0]}:{port}"
        with httpx.Client(timeout=60) as web:
            assert web.get(lan_base + "/api/options").status_code == 401
            ok = web.get(lan_base + "/api/options", headers={"X-Studio-Token": token})
            assert ok.status_code == 200
            rebound = web.get(
                lan_base + "/api/options",
                headers={"X-Studio-Token": token, "Host": f"evil.example:{port}"},
            )
            assert rebound.status_code == 421
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_the_readme_says_the_token_is_what_protects_a_lan_studio():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Studio", 1)[1].split("\n## ", 1)[0]
    assert "--host 0.0.0.0" in section and "token" in section
    assert "Host header" in section


# --- item 7: the queue keeps its word, odd bodies are 400, nothing is left behind ------------

LONG = (
    SHORT
    + "\n"
    + "\n\n".join(f"Sentence number {i} settles like a leaf on still water." for i in range(40))
    + "\n"
)


def test_a_cancel_while_the_worker_process_starts_stops_it(tmp_path):
    async def scenario():
        queue = JobQueue(tmp_path / "work")
        queue.start()
        spec = {"text": LONG, "values": {}, "name": "calm.md", "folder": str(tmp_path)}
        job = await queue.submit("render", spec, filename="calm.wav")
        while job.state != "running":
            await asyncio.sleep(0)
        # The runner marked it running and now waits for its process to start: the window.
        assert job.process is None
        await queue.cancel(job.id)
        while job.state not in ("done", "failed", "cancelled"):
            await asyncio.sleep(0.05)
        await queue.stop()
        return job

    job = asyncio.run(scenario())
    assert job.state == "cancelled" and job.result is None
    # Its process was stopped by the cancel (SIGTERM), not left to render to the end.
    assert job.process is None or job.process.returncode == -signal.SIGTERM
    assert not job.folder.exists()


def test_absurd_bodies_are_refused_with_400_and_a_message(client):
    deep = client.post("/api/check", content="[" * 100_000)
    assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]
    for raw in (
        '{"kind": "preview", "text": "Hi.", "line": 1e400}',
        '{"kind": "preview", "text": "Hi.", "line": "x"}',
        '{"kind": "preview", "text": "Hi.", "line": 2.5}',
        '{"kind": "preview", "text": "Hi.", "line": true}',
    ):
        response = client.post("/api/jobs", content=raw)
        assert response.status_code == 400, raw
        assert response.json()["error"].startswith("line must be a"), response.text
    assert not client.studio["queue"].jobs


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds processes in /proc")
def test_a_studio_killed_with_kill_9_leaves_its_job_folder_only_until_the_next_start(tmp_path):
    httpx = pytest.importorskip("httpx2")
    marker = f"MEDITATION_STUDIO_TEST={os.getpid()}-{time.time_ns()}"
    work = tmp_path / "tmp"
    work.mkdir()
    env = {**os.environ, "TMPDIR": str(work), marker.split("=")[0]: marker.split("=")[1]}
    first = _studio(tmp_path, "--dir", str(tmp_path), env=env)
    try:
        base, token = first.stdout.readline().split()[2].split("/?token=")
        headers = {"X-Studio-Token": token}
        with httpx.Client(timeout=120, headers=headers) as web:
            job = web.post(
                base + "/api/jobs", json={"kind": "render", "text": LONG, "values": {}}
            ).json()
            speaking = lambda: web.get(f"{base}/api/jobs/{job['id']}").json()["percent"] > 0  # noqa: E731
            assert wait_until(speaking, 120, poll_s=0.1)
    finally:
        first.kill()
        first.communicate(timeout=30)
    wait_until(lambda: not processes_with(marker), 30, poll_s=0.1)
    assert processes_with(marker) == []  # the render worker died with the studio
    left = [p for p in work.iterdir()]
    assert len(left) == 1 and list(left[0].rglob("job.json"))  # the script's text, left behind
    second = _studio(tmp_path, "--dir", str(tmp_path), env=env)
    try:
        base, token = second.stdout.readline().split()[2].split("/?token=")
        with httpx.Client(timeout=120) as web:
            assert (
                web.get(base + "/api/options", headers={"X-Studio-Token": token}).status_code == 200
            )
        now = list(work.iterdir())
        assert left[0] not in now and len(now) == 1  # the old one swept, the new studio's own
    finally:
        second.terminate()
        second.communicate(timeout=30)
    assert list(work.iterdir()) == []


def test_saved_files_get_the_mode_the_umask_gives(client, folder):
    expected = 0o666 & ~_umask()
    assert client.post("/api/script", json={"path": "calm.md", "text": SHORT}).status_code == 200
    assert (
        client.post(
            "/api/settings",
            json={
                "path": "calm.toml",
                "values": {"rate": 0.9},
                "script": "calm.md",
                "format": "mp3",
            },
        ).status_code
        == 200
    )
    saved = client.post(
        "/api/preset", json={"path": "mine.toml", "base": "stream", "levels": {"river": -3}}
    )
    assert saved.status_code == 200, saved.text
    for name in ("calm.md", "calm.toml", "mine.toml"):
        assert (folder / name).stat().st_mode & 0o777 == expected, name


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_errors_name_the_users_files_not_the_studios_hidden_paths(client, folder):
    (folder / "cover.png").write_bytes(b"not a picture at all")
    missing = client.post(
        "/api/jobs",
        json={"kind": "render", "text": SHORT, "values": {"bed": "rain.wav"}, "format": "mp3"},
    )
    assert missing.status_code == 400
    assert missing.json()["error"] == "recording 'rain.wav' does not exist"
    job = client.post(
        "/api/jobs",
        json={"kind": "render", "text": SHORT, "values": {"cover": "cover.png"}, "format": "mp3"},
    ).json()
    queue = client.studio["queue"]
    assert wait_until(
        lambda: queue.jobs[job["id"]].state in ("done", "failed", "cancelled"), 120, poll_s=0.1
    )
    error = client.get(f"/api/jobs/{job['id']}").json()["error"]
    assert "cover.png" in error, error
    for hidden in (str(folder), str(queue.work_dir), "/tmp"):
        assert hidden not in error, error


def test_save_settings_refuses_what_batch_would_refuse(client, folder):
    (folder / "calm.md").write_text(SHORT)
    for values, needle in (
        ({"rate": "fast"}, "rate"),
        ({"soundscape": "stream", "layers": "thunder"}, "thunder"),
        ({"voice_fx": "gentle,nonsense=3"}, "nonsense"),
        ({"bed": "missing.wav"}, "missing.wav"),
    ):
        response = client.post(
            "/api/settings",
            json={"path": "calm.toml", "values": values, "script": "calm.md", "format": "mp3"},
        )
        assert response.status_code == 400, (values, response.text)
        assert needle in response.json()["error"]
        assert not (folder / "calm.toml").exists()
        added = client.post(
            "/api/manifest",
            json={"path": "all.toml", "values": values, "script": "calm.md", "format": "mp3"},
        )
        assert added.status_code == 400 and not (folder / "all.toml").exists()
    good = {"rate": 0.9, "soundscape": "stream", "layers": "river"}
    response = client.post(
        "/api/settings",
        json={"path": "calm.toml", "values": good, "script": "calm.md", "format": "mp3"},
    )
    assert response.status_code == 200, response.text
    for variant in expand_manifest(folder / "calm.toml"):
        validate_variant(variant, manifest=folder / "calm.toml")


@pytest.mark.parametrize(
    ("sig", "status", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_the_studio_reports_ctrl_c_and_sigterm_in_one_line_and_exits_like_the_cli(
    tmp_path, sig, status, word
):
    httpx = pytest.importorskip("httpx2")
    process = _studio(tmp_path, "--dir", str(tmp_path))
    try:
        base, token = process.stdout.readline().split()[2].split("/?token=")
        with httpx.Client(timeout=120) as web:  # the app has started: its signal handlers are set
            assert (
                web.get(base + "/api/options", headers={"X-Studio-Token": token}).status_code == 200
            )
    finally:
        process.send_signal(sig)
        _, err = process.communicate(timeout=60)
    assert process.returncode == status
    assert err == f"meditation: {word}; no partial file was left\n"


# --- item 13: a host that cannot be listened on is one line, and no warning -------------------


def test_a_host_that_does_not_resolve_is_one_line_without_the_security_warning(tmp_path):
    process = _studio(tmp_path, "--host", "bogus.invalid", "--dir", str(tmp_path))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and out == ""
    assert err.startswith("meditation: error: --host 'bogus.invalid': no such address")
    assert err.count("\n") == 1 and "warning" not in err


# --- item 19: "Copy as command" gives a command that works, or says what to do first ----------


def test_copy_as_command_asks_for_the_script_to_be_saved_and_then_gives_a_line_that_renders(
    client, folder, tmp_path
):
    body = {"values": {"seed": 3}, "name": "calm.md", "text": SHORT, "format": "wav"}
    unsaved = client.post("/api/command", json=body)
    assert unsaved.status_code == 409
    assert unsaved.json()["error"].startswith("save the script as 'calm.md' first")
    (folder / "calm.md").write_text(SHORT.replace("shoulders", "arms"))
    changed = client.post("/api/command", json=body)
    assert changed.status_code == 409 and "not saved" in changed.json()["error"]
    assert client.post("/api/script", json={"path": "calm.md", "text": SHORT, "overwrite": True})
    answer = client.post("/api/command", json=body).json()
    assert answer["folder"] == str(folder.resolve())
    words = shlex.split(answer["command"])
    words[4] = str(tmp_path / "cli.wav")
    done = subprocess.run(
        [sys.executable, "-m", *words], cwd=answer["folder"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    audio, rate = sf.read(tmp_path / "cli.wav")
    assert rate > 0 and len(audio) / rate > 1.5  # lead-in, the sentence and the tail
