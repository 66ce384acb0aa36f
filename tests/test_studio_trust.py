"""The studio under hostile use (issue 18): its folder is a wall, its address is what it listens on,
its queue keeps its word, and it leaves nothing behind.

Renders are real (the fast pyttsx3 voice, short sentences, WAV), as in test_studio_api.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import soundfile as sf

pytest.importorskip("starlette", reason="the studio extra is not installed")
pytest.importorskip("tomli_w", reason="the studio extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

from meditation.studio import allowed_hosts, create_app  # noqa: E402

TOKEN = "test-token-0123456789"
HOST = "127.0.0.1:8765"
BASE = f"http://{HOST}"

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
    path = tmp_path / "studio"
    path.mkdir()
    return path


@pytest.fixture
def client(folder):
    app = create_app(folder, token=TOKEN, hosts=[HOST])
    with TestClient(app, base_url=BASE, headers={"X-Studio-Token": TOKEN}) as c:
        c.studio = app.state.studio
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
