"""The on-disk speech cache: keys, hits that skip the engine, damaged entries,
`meditation cache clear`, and concurrent writers."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from quick import quick_render

from meditation import voices
from meditation.cache import SpeechCache, cache_dir
from meditation.cli import main
from meditation.speech import synthesize


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDITATION_CACHE_DIR", str(tmp_path / "cache"))
    return SpeechCache()


class _Counting(voices.VoiceEngine):
    """A deterministic stand-in engine that counts what it is asked to speak."""

    calls: list = []

    @classmethod
    def voices(cls):
        return ["a", "b"]

    @classmethod
    def default_voice(cls):
        return "a"

    @property
    def sample_rate(self):
        return 22050

    def synthesize(self, text, *, rate, seed):
        type(self).calls.append((self.voice, rate, text))
        rng = np.random.default_rng(seed)
        n = int(22050 * 0.02 * len(text) / rate)
        return (0.3 * np.sin(np.arange(n) * 0.05) * (1 + 0.1 * rng.standard_normal(n))).astype(
            np.float32
        )


@pytest.fixture
def counting():
    voices.register_engine("counting")(_Counting)
    voices.load_voice.cache_clear()
    _Counting.calls = []
    yield _Counting
    voices.ENGINES.pop("counting", None)
    voices.load_voice.cache_clear()


def test_cache_lives_in_the_folder_the_environment_names(cache, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    assert cache.folder == tmp_path / "cache" / "speech"


def test_key_depends_on_engine_voice_rate_text_and_sample_rate():
    base = SpeechCache.key("piper:joe", 0.9, "Breathe in.")
    assert base == SpeechCache.key("piper:joe", 0.9, "Breathe in.")
    others = {
        SpeechCache.key("pyttsx3:joe", 0.9, "Breathe in."),
        SpeechCache.key("piper:amy", 0.9, "Breathe in."),
        SpeechCache.key("piper:joe", 0.8, "Breathe in."),
        SpeechCache.key("piper:joe", 0.9, "Breathe in!"),
        SpeechCache.key("piper:joe", 0.9, "Breathe in.", 48000),
    }
    assert base not in others and len(others) == 5


def test_round_trip_is_exact(cache, rng):
    audio = rng.standard_normal(12345).astype(np.float32)
    cache.put("k" * 64, audio)
    back = cache.get("k" * 64)
    assert back.dtype == np.float32 and np.array_equal(back, audio)
    back[0] = 5.0  # a writable copy, not a view of the file
    assert cache.get("k" * 64)[0] == audio[0]
    assert cache.get("m" * 64) is None and cache.count() == 1


def test_a_hit_skips_the_engine_and_gives_the_same_audio(cache, counting):
    texts = ["Breathe in slowly.", "And let it go.", "Breathe in slowly."]
    first = synthesize(texts, voice="counting:a", rate=0.9, sample_rate=44100, cache=cache)
    assert len(counting.calls) == 2  # the repeated sentence is spoken once
    counting.calls.clear()
    second = synthesize(texts, voice="counting:a", rate=0.9, sample_rate=44100, cache=cache)
    assert counting.calls == []  # every segment came from the cache
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    # Another rate or voice is other speech: spoken again.
    synthesize(texts[:1], voice="counting:a", rate=1.0, sample_rate=44100, cache=cache)
    synthesize(texts[:1], voice="counting:b", rate=0.9, sample_rate=44100, cache=cache)
    assert [c[:2] for c in counting.calls] == [("a", 1.0), ("b", 0.9)]
    # No cache: the engine speaks every (distinct) text again.
    counting.calls.clear()
    synthesize(texts, voice="counting:a", rate=0.9, sample_rate=44100, cache=None)
    assert len(counting.calls) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "garbage", "empty", "old format"])
def test_a_damaged_entry_is_a_miss_and_is_rewritten(cache, counting, damage):
    texts = ["The river flows on."]
    good = synthesize(texts, voice="counting:a", rate=1.0, sample_rate=22050, cache=cache)
    (entry,) = list(cache.folder.rglob("*.f32"))
    blob = entry.read_bytes()
    broken = {
        "truncate": blob[: len(blob) // 2],
        "flip a byte": blob[:-10] + bytes([blob[-10] ^ 0x40]) + blob[-9:],
        "garbage": b"\x93NUMPY not really" * 10,
        "empty": b"",
        "old format": b"MEDSPCH1" + blob[8:],  # another layout version
    }[damage]
    entry.write_bytes(broken)
    key = SpeechCache.key("counting:a", 1.0, texts[0], 22050)
    assert cache.get(key) is None
    assert not entry.exists()  # dropped, so it cannot mislead anyone else
    counting.calls.clear()
    again = synthesize(texts, voice="counting:a", rate=1.0, sample_rate=22050, cache=cache)
    assert len(counting.calls) == 1 and np.array_equal(again[0], good[0])
    assert entry.read_bytes() == blob  # rewritten whole


def test_cache_clear_command_empties_it(cache, counting, capsys):
    synthesize(
        ["One.", "Two.", "Three."], voice="counting:a", rate=1.0, sample_rate=22050, cache=cache
    )
    (cache.folder / "ab").mkdir()
    (cache.folder / "ab" / ".tmp-left-by-a-crash.f32").write_bytes(b"x")
    assert cache.count() == 3
    assert main(["cache", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(cache.folder)
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == f"removed 3 cached segments from {cache.folder}"
    assert cache.count() == 0 and not cache.folder.exists()
    assert main(["cache", "clear"]) == 0
    assert "removed 0 cached segments" in capsys.readouterr().out


@pytest.mark.slow
def test_no_cache_render_neither_reads_nor_writes(cache, tmp_path):
    script = tmp_path / "s.md"
    script.write_text("# One\n\nBreathe in.\n", encoding="utf-8")
    assert quick_render(script, tmp_path / "a.wav", "--no-cache") == 0
    assert cache.count() == 0
    assert quick_render(script, tmp_path / "b.wav") == 0
    assert cache.count() == 1
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from meditation.cache import SpeechCache

    cache = SpeechCache()
    me = int(sys.argv[1])
    def audio(k):  # what every process writes for key k: identical bytes
        return np.random.default_rng(k).standard_normal(2000 + 37 * k).astype(np.float32)
    bad = 0
    for round in range(6):
        for k in range(40):
            key = f"{k:064x}"
            got = cache.get(key)
            if got is not None and not np.array_equal(got, audio(k)):
                bad += 1
            if (k + me + round) % 2 == 0:
                cache.put(key, audio(k))
    print(bad)
    """
)


@pytest.mark.slow
def test_concurrent_writers_never_leave_a_torn_entry(cache):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert [out.strip() for out, _ in results] == [
        "0"
    ] * 4  # no reader ever saw a partial or wrong entry
    assert cache.count() == 40
    for k in range(40):
        expected = np.random.default_rng(k).standard_normal(2000 + 37 * k).astype(np.float32)
        assert np.array_equal(cache.get(f"{k:064x}"), expected)
    assert not [p for p in cache.folder.rglob(".tmp-*")]  # no temporary file left behind


def test_an_unwritable_cache_is_only_slower(tmp_path, monkeypatch, counting):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MEDITATION_CACHE_DIR", str(blocker))
    cache = SpeechCache()
    out = synthesize(["Hello there."], voice="counting:a", rate=1.0, sample_rate=22050, cache=cache)
    assert len(out[0]) > 0 and cache.count() == 0
