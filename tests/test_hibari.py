"""hibari's heart: a second neural voice that speaks offline, at the asked rate, the same bits every time."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from meditation.cache import SpeechCache
from meditation.errors import VoiceError
from meditation.speech import synthesize
from meditation.voices import ENGINES, list_voices, load_voice, resolve_voice

ROOT = Path(__file__).resolve().parents[1]

# Not one of the paragraphs the rate table was measured on.
HELD_OUT = (
    "Now bring your attention to your hands. Notice their warmth, the air between the fingers, "
    "and the gentle pulse that moves through them. Let them rest, open and easy, on your lap."
)


@pytest.mark.parametrize("voice", ["hibari:heart", "piper:joe"])
def test_spoken_duration_follows_one_over_rate(voice):
    durations = {}
    for rate in (0.6, 0.8, 1.0, 1.2):
        (audio,) = synthesize([HELD_OUT], voice=voice, rate=rate, sample_rate=24000)
        durations[rate] = len(audio) / 24000
    for rate, seconds in durations.items():
        expected = durations[1.0] / rate
        assert abs(seconds / expected - 1) < 0.05, (rate, durations)


def test_repeats_are_bit_identical_and_the_seed_matters():
    engine = load_voice("hibari:heart")
    text = "Breathe in slowly, and let it go."
    first = engine.synthesize(text, rate=0.9, seed=7)
    assert engine.sample_rate == 24000 and first.dtype == np.float32
    assert 0.05 < np.max(np.abs(first)) <= 0.98
    assert np.array_equal(engine.synthesize(text, rate=0.9, seed=7), first)
    other = engine.synthesize(text, rate=0.9, seed=8)
    assert len(other) == len(first) and not np.array_equal(other, first)


def test_the_speech_cache_keys_hibari_apart_from_joe(tmp_path):
    cache = SpeechCache(tmp_path)
    text = ["Let your shoulders soften."]
    (heart,) = synthesize(text, voice="hibari:heart", rate=0.9, sample_rate=44100, cache=cache)
    (joe,) = synthesize(text, voice="piper:joe", rate=0.9, sample_rate=44100, cache=cache)
    assert cache.count() == 2 and len(heart) != len(joe)
    (again,) = synthesize(text, voice="hibari:heart", rate=0.9, sample_rate=44100, cache=cache)
    assert cache.hits == 1 and np.array_equal(again, heart)


def test_only_installed_voices_are_listed_and_the_others_refused_before_loading(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("HIBARI_HOME", str(tmp_path))  # an empty download cache
    assert ENGINES["hibari"].voices() == ["heart"]
    assert "hibari:heart" in list_voices() and "hibari:emma" not in list_voices()
    assert resolve_voice("hibari") == "hibari:heart"
    with pytest.raises(VoiceError, match="'emma' is not installed"):
        resolve_voice("hibari:emma")
    with pytest.raises(VoiceError, match="unknown voice 'hibari:nobody'"):
        resolve_voice("hibari:nobody")
    info = ENGINES["hibari"].describe("heart")
    assert (info.language, info.gender, info.sample_rate, info.neural) == (
        "en-US",
        "female",
        24000,
        True,
    )


# --- offline: every command with sockets blocked ------------------------------------

# Loaded at start-up of every Python process that has this folder on its path
# (children too): any attempt to reach the network is written down and fails.
_GUARD = """
import os, socket

_LOG = os.environ["NETWORK_ATTEMPTS_LOG"]

def _refuse(what):
    with open(_LOG, "a") as f:
        f.write(f"{os.getpid()} {what}\\n")
    raise OSError(101, "network blocked by the test")

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex

def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse(f"connect {address!r}")
    return _connect(self, address)

def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse(f"connect_ex {address!r}")
    return _connect_ex(self, address)

socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.create_connection = lambda address, *a, **k: _refuse(f"create_connection {address!r}")
socket.getaddrinfo = lambda host, *a, **k: _refuse(f"getaddrinfo {host!r}")
"""

SCRIPT = """---
lead_in: 0.5
tail: 1
soundscape: none
---

# Arriving

Breathe in slowly. [breathe] Let your shoulders soften.
"""


@pytest.fixture
def offline(tmp_path):
    """An environment whose Python processes cannot reach the network, and the log of their tries."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_GUARD, encoding="utf-8")
    log = tmp_path / "attempts.log"
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(guard), str(ROOT)]),
        NETWORK_ATTEMPTS_LOG=str(log),
        HIBARI_HOME=str(tmp_path / "hibari-home"),  # no voice downloaded earlier
        MEDITATION_CACHE_DIR=str(tmp_path / "cache"),
    )
    return env, log


def _run(env, cwd, *args, timeout=300):
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_guard_catches_a_download(offline, tmp_path):
    """The guard is real: hibari asked for a voice it lacks tries the network, and is stopped."""
    env, log = offline
    code = "from hibari.voices import voice_path\ntry: voice_path('emma')\nexcept Exception: pass"
    assert _run(env, tmp_path, "-c", code).returncode == 0
    assert "huggingface.co" in log.read_text()


def test_voices_render_and_batch_never_touch_the_network(offline, tmp_path):
    env, log = offline
    (tmp_path / "calm.md").write_text(SCRIPT, encoding="utf-8")
    voices = _run(env, tmp_path, "-m", "meditation", "voices")
    assert voices.returncode == 0 and "hibari:heart" in voices.stdout
    render = _run(
        env,
        tmp_path,
        "-m",
        "meditation",
        "render",
        "calm.md",
        "--voice",
        "hibari:heart",
        "-o",
        "calm.wav",
        "--captions",
        "calm.vtt",
    )
    assert render.returncode == 0, render.stderr
    audio, rate = sf.read(tmp_path / "calm.wav")
    assert rate == 44100 and np.sqrt(np.mean(audio**2)) > 0.01
    assert "shoulders soften" in (tmp_path / "calm.vtt").read_text()
    refused = _run(env, tmp_path, "-m", "meditation", "render", "calm.md", "--voice", "hibari:emma")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "'emma' is not installed" in refused.stderr
    assert not (tmp_path / "calm.mp3").exists()
    (tmp_path / "set.toml").write_text(
        'output = "{name}.wav"\n[defaults]\nscript = "calm.md"\nvoice = "hibari:heart"\n'
        '[[variants]]\nname = "one"\n[[variants]]\nname = "two"\nrate = 0.8\n',
        encoding="utf-8",
    )
    batch = _run(env, tmp_path, "-m", "meditation", "batch", "set.toml", "-j", "2")
    assert batch.returncode == 0, batch.stderr
    assert (tmp_path / "one.wav").exists() and (tmp_path / "two.wav").exists()
    assert not log.exists(), log.read_text()


def test_the_studio_renders_with_hibari_offline(offline, tmp_path):
    pytest.importorskip("starlette", reason="the studio extra is not installed")
    env, log = offline
    folder = tmp_path / "studio"
    folder.mkdir()
    driver = textwrap.dedent(
        f"""
        import json, sys, time
        from starlette.testclient import TestClient
        from meditation.studio import create_app

        app = create_app({str(folder)!r}, token="t" * 24, hosts=["127.0.0.1:8765"])
        with TestClient(app, base_url="http://127.0.0.1:8765", headers={{"X-Studio-Token": "t" * 24}}) as c:
            job = c.post("/api/jobs", json={{"kind": "render", "text": {SCRIPT!r}, "name": "calm.md",
                "values": {{"voice": "hibari:heart"}}, "format": "wav"}}).json()
            deadline = time.time() + 240
            while time.time() < deadline:
                state = c.get(f"/api/jobs/{{job['id']}}").json()
                if state["state"] not in ("queued", "running"):
                    break
                time.sleep(0.1)
            audio = c.get(f"/api/jobs/{{job['id']}}/audio")
            print(json.dumps({{"state": state["state"], "bytes": len(audio.content)}}))
        """
    )
    result = _run(env, tmp_path, "-c", driver)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["state"] == "done" and outcome["bytes"] > 44100, outcome
    assert not log.exists(), log.read_text()


# --- the dream, spoken by heart --------------------------------------------------------


def test_the_dream_with_heart_meets_loudness_with_captions_inside_speech_and_same_bits(
    tmp_path,
):
    from ffmpeg import ebur128
    from measure import rms_db
    from published import DREAM, DREAM_SCENES
    from test_captions import _segment_of, read_cues

    from meditation.cli import main

    def render(name, *extra):
        out = tmp_path / f"{name}.wav"
        args = ["render", str(DREAM), "--voice", "hibari:heart", "-o", str(out)]
        assert main([*args, "--progress", "off", *extra]) == 0
        return out

    first = render(
        "first",
        "--no-cache",
        "--timings",
        str(tmp_path / "dream.json"),
        "--captions",
        str(tmp_path / "dream.vtt"),
        "--stems",
        str(tmp_path / "stems"),
    )
    loudness, true_peak = ebur128(first)
    assert abs(loudness - -16.0) <= 0.5 and true_peak <= -1.0
    timings = json.loads((tmp_path / "dream.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in timings["scenes"]] == list(DREAM_SCENES)  # the chapters
    segments = [s for s in timings["segments"] if s["end"] > s["start"]]
    voice, sr = sf.read(tmp_path / "stems" / "voice.wav", dtype="float32")
    voice = voice.mean(axis=1)
    cues = read_cues(tmp_path / "dream.vtt")
    assert len(cues) >= len(segments)
    for cue in cues:
        assert _segment_of(cue, segments) is not None, cue
        assert rms_db(voice[int(cue[0] * sr) : int(cue[1] * sr)]) > -40.0, cue
    # Spoken afresh through the speech cache, the same bits.
    assert render("second").read_bytes() == first.read_bytes()


def test_heart_speaks_the_breathing_cues_at_each_phase(tmp_path):
    from measure import rms_db

    from meditation.cli import main

    out = tmp_path / "cues.wav"
    args = ["say", "Breathe with me. [breathe 4-2-6 x2 cues] Good.", "--voice", "hibari:heart"]
    assert main([*args, "-o", str(out), "--voice-fx", "none"]) == 0
    audio, sr = sf.read(out)
    voice = audio.mean(axis=1)
    # The phases start 4, 2 and 6 s apart, twice; each begins with its word.
    loud = np.array(
        [rms_db(voice[i : i + sr // 10]) > -35 for i in range(0, len(voice) - sr // 10, sr // 10)]
    )
    onsets = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    assert len(onsets) == 1 + 6 + 1, onsets  # the sentence, six cue words, "Good."
    gaps_s = np.diff(onsets[1:7]) / 10
    assert np.allclose(gaps_s, [4, 2, 6, 4, 2], atol=0.25), gaps_s


def test_voices_shows_engine_language_gender_sample_rate_and_kind(capsys):
    from meditation.cli import main

    assert main(["voices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "voice",
        "engine",
        "language",
        "accent",
        "gender",
        "sample",
        "rate",
        "neural",
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert lines[1].startswith("piper:joe (default)")
    assert rows["piper:joe"][2:] == ["piper", "en-US", "American", "male", "22050", "Hz", "yes"]
    assert rows["hibari:heart"][1:] == [
        "hibari",
        "en-US",
        "American",
        "female",
        "24000",
        "Hz",
        "yes",
    ]
    assert rows["pyttsx3:gmw/en-us"][1:] == ["pyttsx3", "en-us", "-", "-", "22050", "Hz", "no"]
    assert lines.index(next(line for line in lines if line.startswith("hibari:heart"))) == 2
