"""The studio's HTTP API without a browser: guards, file safety, the render queue, cancel.

Renders are real (the fast pyttsx3 voice, two short sentences, WAV), run by
the same worker processes the page uses.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from studio import BASE, TOKEN, processes_with, studio_client, studio_folder
from waiting import wait_until

from meditation.errors import install_hint
from meditation.studio.shape import preview_text

SHORT = """---
voice: pyttsx3
lead_in: 0.5
tail: 1
soundscape: none
---

# Arriving

Let your shoulders drop. Breathe out slowly.
"""

# Long enough that a cancel lands while it is still speaking.
LONG = (
    SHORT
    + "\n"
    + "\n\n".join(f"Sentence number {i} settles like a leaf on still water." for i in range(40))
    + "\n"
)

FAST = {"voice": "pyttsx3", "lead_in": 0.5, "tail": 1, "soundscape": "none"}


@pytest.fixture
def folder(tmp_path):
    return studio_folder(tmp_path)


@pytest.fixture
def client(folder):
    with studio_client(folder, "localhost:8765") as c:
        yield c


def _events(client, job_id: str) -> list[dict]:
    """Every snapshot the page would receive for a job, until it finishes."""
    seen = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    return seen


def _submit(client, text=SHORT, **extra) -> dict:
    body = {
        "kind": "render",
        "text": text,
        "name": "calm.md",
        "values": {},
        "format": "wav",
        **extra,
    }
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def _group_gone(pgid: int, *, within_s: float) -> bool:
    """True once no process of the group is left (killed helpers take a moment to be reaped)."""

    def gone():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    return wait_until(gone, within_s)


def _audio_files(*folders: Path) -> list[Path]:
    return [
        p
        for f in folders
        if f.exists()
        for p in f.rglob("*")
        if p.suffix in (".wav", ".mp3", ".flac", ".ogg", ".tmp") or ".tmp" in p.name
    ]


# --- guards ---------------------------------------------------------------------


def test_a_request_without_the_token_is_refused(folder):
    with studio_client(folder, token=False) as bare:
        for method, path in [
            ("GET", "/"),
            ("GET", "/api/options"),
            ("GET", "/static/studio.js"),
            ("GET", "/api/files"),
        ]:
            assert bare.request(method, path).status_code == 401, path
        assert bare.post("/api/check", json={"text": "Hello."}).status_code == 401
        assert bare.post("/api/jobs", json={"text": "Hello.", "values": FAST}).status_code == 401
        assert (
            bare.get("/api/options", headers={"X-Studio-Token": "not-the-token"}).status_code == 401
        )
        assert bare.get("/api/options", params={"token": TOKEN[:-1]}).status_code == 401
        assert not bare.studio["queue"].jobs


def test_the_page_with_the_token_sets_a_cookie_that_opens_the_api(folder):
    with studio_client(folder, token=False) as browser:
        page = browser.get("/", params={"token": TOKEN})
        assert page.status_code == 200
        assert "meditation" in page.text and "studio.js" in page.text
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "default-src 'self'" in page.headers["content-security-policy"]
        # The cookie alone now opens the API, as it does for the page's scripts and media.
        assert browser.get("/api/options").status_code == 200
        assert browser.get("/static/studio.js").status_code == 200


def test_a_foreign_origin_is_refused(client):
    for origin in (
        "http://evil.example",
        "http://127.0.0.1:9999",
        "null",
        "https://127.0.0.1:8765",
    ):
        response = client.post(
            "/api/jobs", json={"text": SHORT, "values": FAST}, headers={"Origin": origin}
        )
        assert response.status_code == 403, origin
    assert (
        client.post(
            "/api/check", json={"text": "Hi."}, headers={"Sec-Fetch-Site": "cross-site"}
        ).status_code
        == 403
    )
    assert not client.studio["queue"].jobs
    # The page's own origin is fine.
    assert (
        client.post(
            "/api/check",
            json={"text": "Hi."},
            headers={"Origin": BASE, "Sec-Fetch-Site": "same-origin"},
        ).status_code
        == 200
    )


def test_a_foreign_host_is_refused_against_dns_rebinding(client):
    # A page on evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example.
    assert client.get("/api/options", headers={"Host": "evil.example:8765"}).status_code == 421
    assert client.get("/api/options", headers={"Host": "localhost:8765"}).status_code == 200


# --- files ----------------------------------------------------------------------


def test_paths_outside_the_folder_are_refused(client, folder):
    secret = folder.parent / "secret.md"
    secret.write_text("# Private\n\nDo not read me.\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "ok.md").write_text("Fine.\n")
    (folder / "link.md").symlink_to(secret)
    (folder / "out").symlink_to(folder.parent)
    for path in (
        "../secret.md",
        "sub/../../secret.md",
        str(secret),
        "/etc/hostname.md",
        "link.md",
        "out/secret.md",
        "..\\secret.md",
        "C:/secret.md",
        ".hidden.md",
    ):
        response = client.get("/api/file", params={"path": path})
        assert response.status_code in (400, 403), path
        assert "Do not read me" not in response.text
    for path in ("../written.md", str(folder.parent / "written.md"), "out/written.md"):
        response = client.post("/api/script", json={"path": path, "text": "Hello.\n"})
        assert response.status_code in (400, 403), path
    assert not (folder.parent / "written.md").exists()
    assert secret.read_text() == "# Private\n\nDo not read me.\n"
    # Inside is fine, and listed; the link out is not.
    assert client.get("/api/file", params={"path": "sub/ok.md"}).json()["text"] == "Fine.\n"
    listed = [f["path"] for f in client.get("/api/files").json()["files"]]
    assert (
        "sub/ok.md" in listed and "link.md" not in listed and not any("secret" in p for p in listed)
    )


def test_save_never_replaces_a_file_without_being_asked(client, folder):
    (folder / "mine.md").write_text("My own words.\n")
    assert (
        client.post("/api/script", json={"path": "mine.md", "text": "Other words.\n"}).status_code
        == 409
    )
    assert (folder / "mine.md").read_text() == "My own words.\n"
    assert (
        client.post(
            "/api/script", json={"path": "mine.md", "text": "Other words.\n", "overwrite": True}
        ).status_code
        == 200
    )
    assert (folder / "mine.md").read_text() == "Other words.\n"
    assert client.post("/api/script", json={"path": "notes.py", "text": "x"}).status_code == 400
    assert sorted(p.name for p in folder.iterdir()) == ["mine.md"]


def test_an_oversized_script_is_refused_with_413(client):
    huge = "Breathe in. " * 100_000  # 1.2 MB
    assert client.post("/api/check", json={"text": huge}).status_code == 413
    assert client.post("/api/jobs", json={"text": huge, "values": FAST}).status_code == 413
    # Without a Content-Length (chunked), the limit holds while reading.
    chunks = (b'{"text": "' + b"a" * 100_000 for _ in range(12))
    assert (
        client.post(
            "/api/check", content=chunks, headers={"Content-Type": "application/json"}
        ).status_code
        == 413
    )
    assert not client.studio["queue"].jobs


# --- checking and settings -----------------------------------------------------


@pytest.mark.slow
def test_check_reports_the_clis_words_at_the_line_and_column(client, tmp_path):
    text = "# Arriving\n\nSettle in.\n\nBreathe out [paws 3s] slowly.\n"
    error = client.post("/api/check", json={"text": text, "name": "bad.md"}).json()["error"]
    assert (error["line"], error["col"]) == (5, 13)
    script = tmp_path / "bad.md"
    script.write_text(text)
    cli = subprocess.run(
        [sys.executable, "-m", "meditation", "render", "bad.md", "-o", "bad.wav"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2
    assert cli.stderr.strip() == f"meditation: error: {error['text']}"
    ok = client.post("/api/check", json={"text": SHORT, "name": "calm.md"}).json()
    assert ok["ok"] and ok["scenes"] == [{"name": "Arriving", "line": 8}]

    assert ok["front_matter"]["voice"] == "pyttsx3"


def test_controls_carry_the_command_lines_defaults(client):
    from meditation.settings import RenderSettings

    options = client.get("/api/options").json()
    controls = {c["key"]: c for c in options["controls"]}
    defaults = RenderSettings()
    assert controls["voice"]["default"] == defaults.voice
    assert controls["rate"]["default"] == defaults.rate
    assert controls["lead_in"]["default"] == defaults.lead_in_s
    assert controls["loudness"]["default"] == defaults.loudness_lufs
    assert controls["seed"]["default"] == defaults.seed
    # Every render setting that is not a file has a control (a new setting appears by itself).
    from meditation.settings import Use, specs_for

    assert set(controls) == (
        {s.key for s in specs_for(Use.RENDER) if s.role is None} - {"cache"}
    ) | {"cover", "bed"}
    assert controls["cover"]["kind"] == "file" and options["inputs"] == {"cover": [], "bed": []}
    assert controls["rate"]["min"] == 0.5 and controls["rate"]["max"] == 2.0
    assert "piper:joe" in options["voices"] and any(
        v.startswith("pyttsx3:") for v in options["voices"]
    )
    assert {"dream", "stream", "default"} <= {p["name"] for p in options["presets"]}
    assert options["dream"].startswith("---")


def test_a_bad_setting_is_refused_before_queueing(client):
    response = client.post(
        "/api/jobs", json={"kind": "render", "text": SHORT, "values": {"rate": 7}, "format": "wav"}
    )
    assert response.status_code == 400 and "--rate 7 is out of range" in response.json()["error"]
    response = client.post(
        "/api/jobs",
        json={"kind": "render", "text": SHORT, "values": {"voice": "nobody:here"}, "format": "wav"},
    )
    assert response.status_code == 400 and "unknown voice" in response.json()["error"]
    response = client.post(
        "/api/jobs", json={"kind": "render", "text": SHORT, "values": {"bogus": 1}, "format": "wav"}
    )
    assert response.status_code == 400 and "unknown setting" in response.json()["error"]
    assert not client.studio["queue"].jobs


def test_copy_as_command_gives_a_line_the_cli_parses_to_the_same_settings(client):
    from meditation import cli
    from meditation.settings import SCHEMA, resolve_settings

    values = {
        "voice": "pyttsx3",
        "rate": 0.8,
        "soundscape": "stream",
        "layers": "river",
        "seed": 7,
        "title": "Evening rest",
        "chapters": False,
        "lead_in": "2m",
    }
    client.post("/api/script", json={"path": "evening.md", "text": SHORT})
    line = client.post(
        "/api/command", json={"values": values, "name": "evening.md", "format": "flac"}
    ).json()["command"]
    words = shlex.split(line)
    assert words[:5] == ["meditation", "render", "evening.md", "-o", "evening.flac"]
    args = cli._parser().parse_args(words[1:])
    given = {k: v for k, v in vars(args).items() if k in SCHEMA}
    assert given["script"] == "evening.md" and given["output"] == "evening.flac"
    from_cli = resolve_settings({k: v for k, v in given.items() if k not in ("script", "output")})
    assert from_cli == resolve_settings(values)
    assert (
        from_cli.rate,
        from_cli.layers,
        from_cli.seed,
        from_cli.chapters,
        from_cli.lead_in_s,
    ) == (0.8, ("river",), 7, False, 120.0)


def test_settings_and_manifest_entries_load_as_the_batch_command_reads_them(client, folder):
    from meditation.batch import expand_manifest

    (folder / "calm.md").write_text(SHORT)
    values = {"rate": 0.8, "seed": 3, "soundscape": "stream"}
    assert (
        client.post(
            "/api/manifest", json={"path": "v.toml", "values": values, "script": "missing.md"}
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/settings",
            json={"path": "calm.toml", "values": values, "script": "calm.md", "format": "wav"},
        ).status_code
        == 200
    )
    (settings,) = expand_manifest(folder / "calm.toml", validate=False)
    assert (settings.settings.rate, settings.settings.seed, settings.settings.soundscape) == (
        0.8,
        3,
        "stream",
    )
    assert settings.settings.output.name == "calm.wav"
    assert client.get("/api/file", params={"path": "calm.toml"}).json()["settings"] == {
        "script": "calm.md",
        "format": "wav",
        "values": values,
    }

    for seed in (3, 4):
        response = client.post(
            "/api/manifest",
            json={
                "path": "v.toml",
                "values": {**values, "seed": seed},
                "script": "calm.md",
                "name": f"calm-{seed}",
            },
        )
        assert response.status_code == 200, response.text
    assert response.json()["variants"] == 2
    data = tomllib.loads((folder / "v.toml").read_text())
    assert [v["seed"] for v in data["variants"]] == [3, 4]
    variants = expand_manifest(folder / "v.toml", validate=False)
    assert [(v.name, v.settings.seed, v.settings.rate) for v in variants] == [
        ("calm-3", 3, 0.8),
        ("calm-4", 4, 0.8),
    ]
    # A second entry with the same name would write the same file: refused, manifest unchanged.
    before = (folder / "v.toml").read_text()
    assert (
        client.post(
            "/api/manifest",
            json={"path": "v.toml", "values": values, "script": "calm.md", "name": "calm-3"},
        ).status_code
        == 400
    )
    assert (folder / "v.toml").read_text() == before


def test_preview_takes_the_scene_under_the_cursor_and_keeps_line_numbers():
    text = "---\nrate: 0.8\n---\n# One\n\nFirst words.\n\n# Two\n\nSecond words.\n"
    part, label = preview_text(text, line=10)
    assert label == "Two"
    assert part.split("\n")[:3] == ["---", "rate: 0.8", "---"]
    assert "First words" not in part and "Second words." in part.split("\n")[9]
    part, label = preview_text(text, line=2)  # in the front matter: the first scene
    assert label == "One" and "First words" in part and "Second" not in part
    long = "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(20))
    part, label = preview_text(long, line=1)
    assert label == "the first minute"
    assert (
        600 < len(part.replace("\n", "")) < 1300
    )  # about a minute of speech at 14 characters a second


def test_levels_are_saved_as_a_preset_in_the_folder_and_never_over_the_users_file(client, folder):
    response = client.post(
        "/api/preset", json={"path": "calm-stream.toml", "base": "stream", "levels": {"river": -20}}
    )
    assert response.status_code == 200, response.text
    stream = tomllib.loads(
        (
            Path(__import__("meditation").__file__).parent / "data" / "soundscapes" / "stream.toml"
        ).read_text()
    )
    # The copy says where its levels came from, once, after the base's own words.
    described = stream["description"] + " (levels set in the studio)"
    assert response.json()["preset"] == {
        "name": "calm-stream.toml",
        "description": described,
        "layers": {"river": -20.0},
    }
    saved = tomllib.loads((folder / "calm-stream.toml").read_text())
    assert saved["layers"]["river"]["level_db"] == -20.0 and saved["scenes"] == stream["scenes"]
    # Ours: saving again replaces it. The user's own file: refused, untouched.
    again = client.post(
        "/api/preset",
        json={"path": "calm-stream.toml", "base": "calm-stream.toml", "levels": {"river": -18}},
    )
    assert again.status_code == 200 and again.json()["preset"]["description"] == described
    (folder / "mine.toml").write_text("# my notes\n")
    assert (
        client.post(
            "/api/preset", json={"path": "mine.toml", "base": "stream", "levels": {"river": -20}}
        ).status_code
        == 409
    )
    assert (folder / "mine.toml").read_text() == "# my notes\n"
    assert (
        client.post(
            "/api/preset", json={"path": "x.toml", "base": "stream", "levels": {"owl": -3}}
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/preset", json={"path": "../x.toml", "base": "stream", "levels": {}}
        ).status_code
        == 403
    )
    # The folder's presets are offered with the shipped ones.
    names = [p["name"] for p in client.get("/api/options").json()["presets"]]
    assert "calm-stream.toml" in names and "mine.toml" not in names


def test_a_soundscape_file_outside_the_folder_is_refused(client, folder):
    outside = folder.parent / "evil.toml"
    outside.write_text(
        (
            Path(__import__("meditation").__file__).parent / "data" / "soundscapes" / "stream.toml"
        ).read_text()
    )
    for value in ("../evil.toml", str(outside), "../../etc/evil", "/etc/passwd"):
        response = client.post(
            "/api/jobs",
            json={
                "kind": "render",
                "text": SHORT,
                "values": {"soundscape": value},
                "format": "wav",
            },
        )
        assert response.status_code in (400, 403), value
    in_front_matter = SHORT.replace("soundscape: none", "soundscape: ../evil.toml")
    assert (
        client.post(
            "/api/jobs",
            json={"kind": "render", "text": in_front_matter, "values": {}, "format": "wav"},
        ).status_code
        == 403
    )
    assert not client.studio["queue"].jobs


def test_files_a_render_reads_must_lie_inside_the_folder(client, folder):
    from PIL import Image

    Image.new("RGB", (8, 8), "navy").save(folder.parent / "secret.png")
    Image.new("RGB", (8, 8), "navy").save(folder / "cover.png")
    for place in ("values", "front matter"):
        for bad in ("../secret.png", str(folder.parent / "secret.png")):
            text, values = (
                (SHORT, {"cover": bad})
                if place == "values"
                else (SHORT.replace("tail: 1", f"tail: 1\ncover: {bad}"), {})
            )
            response = client.post(
                "/api/jobs",
                json={"kind": "render", "text": text, "values": values, "format": "mp3"},
            )
            assert response.status_code == 403, (place, bad, response.text)
    assert (
        client.post(
            "/api/jobs",
            json={"kind": "render", "text": SHORT, "values": {"bed": "notes.txt"}, "format": "mp3"},
        ).status_code
        == 400
    )
    assert client.get("/api/options").json()["inputs"]["cover"] == ["cover.png"]
    job = _submit(client, values={"cover": "cover.png"}, format="mp3")
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert len(client.studio["queue"].jobs) == 1


# --- renders --------------------------------------------------------------------


@pytest.mark.slow
def test_two_renders_queue_and_run_one_after_the_other(client):
    first = _submit(client)
    second = _submit(client, values={"seed": 2})
    assert second["state"] == "queued" and second["position"] >= 1
    wait_until(lambda: client.get(f"/api/jobs/{first['id']}").json()["state"] != "queued", 60)
    waiting = client.get(f"/api/jobs/{second['id']}").json()
    assert (waiting["state"], waiting["position"]) == ("queued", 1)
    a, b = _events(client, first["id"]), _events(client, second["id"])
    assert a[-1]["state"] == "done" and b[-1]["state"] == "done", (a[-1], b[-1])
    assert b[-1]["started_s"] >= a[-1]["finished_s"]
    percents = [s["percent"] for s in a]
    assert (
        percents == sorted(percents)
        and percents[-1] == 100.0
        and any(0 < p < 100 for p in percents)
    )
    for snap in (a[-1], b[-1]):
        audio = client.get(f"/api/jobs/{snap['id']}/audio")
        assert audio.status_code == 200
        data, rate = sf.read(__import__("io").BytesIO(audio.content))
        assert abs(len(data) / rate - snap["result"]["duration_s"]) < 0.01
        assert np.sqrt(np.mean(data**2)) > 0.01  # speech, not silence
        captions = client.get(f"/api/jobs/{snap['id']}/captions")
        assert captions.status_code == 200 and captions.headers["content-type"].startswith(
            "text/vtt"
        )
        assert captions.text.startswith("WEBVTT") and "shoulders drop" in captions.text


@pytest.mark.slow
def test_cancel_stops_the_render_and_leaves_no_file(client, folder):
    queue = client.studio["queue"]
    running = _submit(client, text=LONG)
    waiting = _submit(client)
    wait_until(lambda: queue.jobs[running["id"]].percent > 0, 60)
    assert queue.jobs[running["id"]].state == "running"
    pid = queue.jobs[running["id"]].process.pid
    assert client.post(f"/api/jobs/{waiting['id']}/cancel").json()["state"] == "cancelled"
    assert client.post(f"/api/jobs/{running['id']}/cancel").status_code == 200
    assert _events(client, running["id"])[-1]["state"] == "cancelled"
    assert _events(client, waiting["id"])[-1]["state"] == "cancelled"
    # No partial file anywhere, no worker or voice helper left behind, nothing to download.
    assert _audio_files(queue.work_dir, folder) == []
    assert (
        not queue.jobs[running["id"]].folder.exists()
        and not queue.jobs[waiting["id"]].folder.exists()
    )
    assert _group_gone(pid, within_s=10)
    assert client.get(f"/api/jobs/{running['id']}/audio").status_code == 409
    # The queue goes on.
    after = _submit(client)
    assert _events(client, after["id"])[-1]["state"] == "done"


@pytest.mark.slow
def test_a_render_plays_the_levels_saved_in_the_folder(client, folder):
    assert (
        client.post(
            "/api/preset",
            json={"path": "calm-stream.toml", "base": "stream", "levels": {"river": -20}},
        ).status_code
        == 200
    )
    done = _events(client, _submit(client, values={"soundscape": "calm-stream.toml"})["id"])[-1]
    assert done["state"] == "done", done
    assert done["result"]["levels"] == [{"river": -20.0}]
    assert done["result"]["settings"]["soundscape"] == str(folder.resolve() / "calm-stream.toml")


def test_the_queue_has_a_limit_and_forgets_old_jobs(client, monkeypatch):
    from meditation.studio import jobs

    monkeypatch.setattr(jobs, "MAX_WAITING", 3)
    monkeypatch.setattr(jobs, "KEEP_FINISHED", 1)
    running = _submit(client, text=LONG)
    b, c = _submit(client), _submit(client)
    for job in (b, c):
        assert client.post(f"/api/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
    d = _submit(client)  # makes room: only the last finished job is kept
    assert client.get(f"/api/jobs/{b['id']}").status_code == 404
    assert client.get(f"/api/jobs/{c['id']}").json()["state"] == "cancelled"
    e, f = _submit(client), _submit(client)
    response = client.post(
        "/api/jobs", json={"kind": "render", "text": SHORT, "values": {}, "format": "wav"}
    )
    waiting = [
        j
        for j in (running, d, e, f)
        if client.get(f"/api/jobs/{j['id']}").json()["state"] == "queued"
    ]
    assert len(waiting) == 3 and response.status_code == 429, (response.status_code, len(waiting))
    assert "already waiting" in response.json()["error"]
    for job in (running, d, e, f):
        client.post(f"/api/jobs/{job['id']}/cancel")
    assert all(_events(client, j["id"])[-1]["state"] == "cancelled" for j in (running, d, e, f))


@pytest.mark.slow
def test_a_preview_renders_only_its_scene(client):
    text = (
        SHORT
        + "\n# Resting\n\nStay here a while, with nothing to do. Let the breath come and go.\n"
    )
    whole = _events(client, _submit(client, text=text)["id"])[-1]
    preview = _events(client, _submit(client, text=text, kind="preview", line=8)["id"])[-1]
    assert (
        preview["state"] == "done"
        and preview["label"] == "Arriving"
        and preview["file"].endswith("-preview.wav")
    )
    scenes = whole["result"]["timeline"]["scenes"]
    spoken = [g for g in whole["result"]["timeline"]["segments"] if g["scene"] == "Arriving"]
    assert [s["name"] for s in preview["result"]["timeline"]["scenes"]] == ["Arriving"]
    # Same speech as in the whole track: lead-in, the scene's words, the tail.
    expected = 0.5 + (spoken[-1]["end"] - spoken[0]["start"]) + 1.0
    assert abs(preview["result"]["duration_s"] - expected) < 0.05
    assert preview["result"]["duration_s"] < scenes[-1]["end"]


def test_the_studio_command_without_its_extra_says_how_to_install_it(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "starlette.py").write_text("raise ImportError('not installed')\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "meditation", "studio"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"meditation: error: the studio needs its extra: {install_hint('studio')}"
    )
    assert result.stdout == ""


@pytest.mark.slow
def test_the_studio_command_prints_its_address_and_stops_cleanly_on_ctrl_c(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "meditation", "studio", "--port", "0", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("meditation studio: http://127.0.0.1:") and "?token=" in line
        import httpx2 as httpx

        url = line.split()[2]
        base, token = url.split("/?token=")
        assert httpx.get(base + "/api/options").status_code == 401
        assert (
            httpx.get(base + "/api/options", headers={"X-Studio-Token": token}).status_code == 200
        )
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130  # as the command line reports Ctrl-C
    assert err == "meditation: interrupted; no partial file was left\n"


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/environ").exists(), reason="needs /proc to find the studio's processes"
)
def test_stopping_the_studio_mid_render_leaves_no_process_and_no_file(tmp_path):
    import httpx2 as httpx

    marker = f"MEDITATION_STUDIO_TEST={os.getpid()}-{time.time_ns()}"
    work = tmp_path / "tmp"
    work.mkdir()
    env = {**os.environ, "TMPDIR": str(work), marker.split("=")[0]: marker.split("=")[1]}
    process = subprocess.Popen(
        [sys.executable, "-m", "meditation", "studio", "--port", "0", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        base, token = process.stdout.readline().split()[2].split("/?token=")
        headers = {"X-Studio-Token": token}
        httpx = httpx.Client(timeout=120)  # a shared, busy machine: be patient
        job = httpx.post(
            base + "/api/jobs",
            json={"kind": "render", "text": LONG, "values": {}, "format": "wav"},
            headers=headers,
        ).json()
        url = f"{base}/api/jobs/{job['id']}"
        wait_until(lambda: httpx.get(url, headers=headers).json()["percent"] > 0, 60, poll_s=0.1)
        assert len(processes_with(marker)) >= 2  # the studio and its render worker
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    wait_until(lambda: not processes_with(marker), 10, poll_s=0.1)
    assert processes_with(marker) == []
    assert list(work.iterdir()) == []  # the studio's work folder and the partial render are gone


def test_listening_beyond_this_computer_warns(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meditation",
            "studio",
            "--port",
            "0",
            "--host",
            "0.0.0.0",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("meditation studio: http://127.0.0.1:")
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert err.startswith("meditation: warning: serving on 0.0.0.0, not only this computer")


@pytest.mark.parametrize(
    "front, line, words",
    [
        ("rate: 9", 2, "rate"),
        ("wind-down: nonsense", 2, "wind-down"),
        ("speakers: {guide: piper:jose}", 2, "jose"),
    ],
)
def test_check_reads_the_front_matter_as_a_render_would(client, front, line, words):
    text = f"---\n{front}\n---\n# Arriving\n\nGuide: Settle in.\n"
    error = client.post("/api/check", json={"text": text, "name": "fm.md"}).json()["error"]
    assert error["line"] == line and words in error["text"], error
