"""--wpm: a pace in words per minute of speech, as measured on the speech itself."""

import json

import numpy as np
import pytest
import soundfile as sf

from meditation.batch import expand_manifest, render_variant
from meditation.cache import SpeechCache
from meditation.cli import main
from meditation.errors import SettingsError
from meditation.pace import (
    DEFAULT_WPM,
    FALLBACK_RATE,
    MAX_PHRASE_BREAK_S,
    NATURAL_FLOOR,
    Pace,
    base_pace,
    count_words,
    phrases,
    words_per_minute,
)
from meditation.preflight import check_values
from meditation.render import render
from meditation.script import parse_script, read_script
from meditation.segments import plan_segments
from meditation.settings import resolve_settings
from meditation.speech import synthesize

# Held out: not the dream the pace model was measured on.
HELD_OUT = """---
lead_in: 0.5
tail: 1
soundscape: none
---

# Arriving

Allow your breathing to find its natural rhythm, gentle and unhurried. Gradually become aware of the places where tension gathers, the shoulders, the forehead, the jaw, and invite each of them to soften.

# Opening

Imagine a warm light settling at the centre of your chest. With every exhalation it expands a little further, illuminating your arms, your hands, and everything around you with quiet kindness.
"""


def _pace(tmp_path, voice, wpm):
    script = tmp_path / "held.md"
    script.write_text(HELD_OUT, encoding="utf-8")
    timings = tmp_path / f"{wpm}.json"
    args = ["render", str(script), "--voice", voice, "--wpm", str(wpm), "--no-cache"]
    code = main([*args, "-o", str(tmp_path / f"{wpm}.wav"), "--timings", str(timings)])
    assert code == 0
    segments = [
        s
        for s in json.loads(timings.read_text(encoding="utf-8"))["segments"]
        if s["end"] > s["start"]
    ]
    return words_per_minute(
        [s["text"] for s in segments], sum(s["end"] - s["start"] for s in segments)
    )


@pytest.mark.parametrize("voice", ["piper:joe", "hibari:heart", "pyttsx3"])
def test_wpm_lands_within_5_percent_of_the_pace_asked(tmp_path, voice):
    for wpm in (110, 150):
        pace = _pace(tmp_path, voice, wpm)
        assert abs(pace / wpm - 1) < 0.05, (voice, wpm, pace)


def test_words_are_counted_as_a_listener_counts_them():
    assert count_words("Don't rush — breathe in, two, 3 times; well-being.") == 8


# A second held-out script, plainer and shorter-worded than the first: the default pace
# must be calm on any text, not only on the one the model was measured on.
BODY_SCAN = """---
lead_in: 0.5
tail: 1
soundscape: none
---

# Settling

Sit or lie in a way that feels easy. Let your eyes close, or rest your gaze on the floor. Take one slow breath in, and let it go.

# Scanning

Bring your attention to your feet. Notice the heels, the soles, the toes, just as they are. Now move up to your knees, your hips, your belly, soft and loose. Let each part rest before you move on.
"""


def _render(tmp_path, text, voice, **values):
    """The pace measured on the speech, the rate the render chose, the audio and its segments."""
    script_path = tmp_path / "script.md"
    script_path.write_text(text, encoding="utf-8")
    name = "-".join([voice.replace(":", "_"), *map(str, values.values())])
    out, timings = tmp_path / f"{name}.wav", tmp_path / f"{name}.timings.json"
    script = read_script(script_path)
    settings = resolve_settings(
        {"voice": voice, "cache": False, "output": out, "timings": timings, **values}, script
    )
    result = render(check_values(settings, script), script)
    segments = [
        s
        for s in json.loads(timings.read_text(encoding="utf-8"))["segments"]
        if s["end"] > s["start"]
    ]
    pace = words_per_minute(
        [s["text"] for s in segments], sum(s["end"] - s["start"] for s in segments)
    )
    return pace, result.settings.rate, out, segments


@pytest.mark.parametrize("voice", ["piper:joe", "hibari:heart"])
def test_the_default_pace_of_a_neural_voice_is_calm(tmp_path, voice):
    pace, rate, _, _ = _render(tmp_path, BODY_SCAN, voice)
    assert 120 <= pace <= 150, (voice, pace, rate)
    assert abs(pace / DEFAULT_WPM - 1) < 0.05, (voice, pace)


def _long_silences(path, segments, at_least_s):
    """Silences of at least ``at_least_s`` inside spoken segments (20 ms frames, -50 dB re. peak)."""
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    quiet = np.max(np.abs(mono)) * 10 ** (-50 / 20)
    frame = sr // 50
    found = []
    for s in segments:
        piece = mono[int(s["start"] * sr) : int(s["end"] * sr)]
        n = len(piece) // frame
        loud = np.abs(piece[: n * frame]).reshape(n, frame).max(axis=1) > quiet
        run = 0
        for is_loud in [*loud, True]:
            if is_loud:
                if run * frame / sr >= at_least_s:
                    found.append(run * frame / sr)
                run = 0
            else:
                run += 1
    return found


def test_below_the_floor_the_voice_keeps_its_rate_and_the_phrase_breaks_grow(tmp_path):
    # The first held-out script: clause marks enough to take 100 wpm at the floor.
    calm, calm_rate, calm_out, calm_segments = _render(tmp_path, HELD_OUT, "piper:joe")
    slow, slow_rate, slow_out, slow_segments = _render(tmp_path, HELD_OUT, "piper:joe", wpm=100)
    assert abs(slow / 100 - 1) < 0.05, slow
    # 100 wpm would need rate ~0.5 spoken whole: the voice stays at its floor instead.
    assert slow_rate == NATURAL_FLOOR["piper:joe"] <= calm_rate
    # The time goes into silences at the clause marks, inside the sentences.
    breaks = sum(len(phrases(s["text"])) - 1 for s in slow_segments)
    assert breaks >= 5
    long_pauses = _long_silences(slow_out, slow_segments, 0.6)
    assert len(long_pauses) >= breaks - 1, (long_pauses, breaks)
    assert _long_silences(calm_out, calm_segments, 0.6) == []
    assert calm > slow


def test_a_pace_is_rate_or_wpm_whichever_was_given_last():
    script = parse_script("---\nwpm: 120\n---\nSit.\n", path="s.md")
    assert resolve_settings({"rate": 0.8}, script).wpm is None
    assert resolve_settings({"rate": 0.8}, script).rate == 0.8
    script = parse_script("---\nrate: 0.8\n---\nSit.\n", path="s.md")
    assert resolve_settings({"wpm": 110}, script).rate is None
    assert resolve_settings({}, script).rate == 0.8
    assert resolve_settings({}, parse_script("Sit.\n", path="s.md")).rate is None


def test_the_base_pace_model():
    planned = plan_segments(parse_script(HELD_OUT, path="s.md"), rate=0.9)
    texts = [s.text for s in planned if s.spoken]
    assert base_pace("piper:joe", texts, rate=0.8) == Pace(0.8)
    assert base_pace("pyttsx3:gmw/en-us", texts, neural=False) == Pace(FALLBACK_RATE)
    calm = base_pace("piper:joe", texts)
    assert calm.phrase_break_s == 0 and calm.rate > NATURAL_FLOOR["piper:joe"]
    assert base_pace("piper:joe", texts, wpm=135, rate=0.8) == calm  # wpm wins in one source
    slow, slower = (base_pace("hibari:heart", texts, wpm=w) for w in (110, 95))
    assert slow.rate == slower.rate == NATURAL_FLOOR["hibari:heart"]
    assert 0 < slow.phrase_break_s < slower.phrase_break_s <= MAX_PHRASE_BREAK_S
    # No clause mark to pause at: an asked pace goes under the floor...
    plain = ["Sit and rest here now.", "Breathe in and breathe out slowly now."]
    assert base_pace("piper:joe", plain, wpm=140).rate < NATURAL_FLOOR["piper:joe"]
    with pytest.raises(SettingsError, match="outside 0.5 to 2"):
        base_pace("piper:joe", plain, wpm=100)
    # ... but the default pace never does, and never fails: monosyllables at the floor.
    assert base_pace("piper:joe", plain) == Pace(NATURAL_FLOOR["piper:joe"])


def test_phrases_end_after_clause_marks_not_inside_numbers():
    assert phrases("Breathe in, slowly; and out: gently—now – rest.") == [
        "Breathe in,",
        "slowly;",
        "and out:",
        "gently—",
        "now –",
        "rest.",
    ]
    assert phrases("Count 3,000 breaths.") == ["Count 3,000 breaths."]


def test_phrased_speech_is_the_same_every_time_and_cached_apart(tmp_path):
    text = "Notice the heels, the soles, the toes."
    cache = SpeechCache(tmp_path / "cache")
    kwargs = dict(voice="hibari:heart", rate=0.65, sample_rate=24000)
    (first,) = synthesize([text], **kwargs, phrase_break_s=0.8, cache=cache)
    (again,) = synthesize([text], **kwargs, phrase_break_s=0.8)
    (cached,) = synthesize([text], **kwargs, phrase_break_s=0.8, cache=cache)
    (whole,) = synthesize([text], **kwargs, cache=cache)
    assert np.array_equal(first, again) and np.array_equal(first, cached)
    # Three breaks of 0.8 s where the whole sentence pauses only briefly.
    assert len(first) - len(whole) > 3 * 0.8 * 24000 * 0.7


def test_a_batch_variant_gets_the_same_default_pace_as_a_render(tmp_path):
    (tmp_path / "scan.md").write_text(BODY_SCAN, encoding="utf-8")
    manifest = tmp_path / "pace.toml"
    manifest.write_text(
        'output = "{script}-{rate}.wav"\n[defaults]\nscript = "scan.md"\nvoice = "hibari:heart"\n',
        encoding="utf-8",
    )
    (variant,) = expand_manifest(manifest)
    assert variant.settings.output.name == "scan-135wpm.wav"
    _, data = render_variant(variant)
    _, rate, _, _ = _render(tmp_path, BODY_SCAN, "hibari:heart")
    # The sidecar keeps the settings as given (for freshness) and the pace the voice spoke at.
    assert data["settings"]["rate"] is None and data["settings"]["wpm"] is None
    assert data["pace"]["rate"] == rate
