"""The voice chain: sentences that sit together, a room that rings into the pauses, and the same bits every time."""

import dataclasses

import numpy as np
import pytest
from measure import band_energy_db

from meditation.cache import SpeechCache
from meditation.cli import main
from meditation.errors import SettingsError
from meditation.loudness import integrated_loudness
from meditation.mix import VoiceBus, limit_crest
from meditation.script import read_script
from meditation.segments import plan_segments
from meditation.settings import DEFAULT_SCRIPT
from meditation.speech import synthesize
from meditation.timeline import layout
from meditation.voicechain import VoiceChain
from meditation.voicefx import STYLES, check_for_sample_rate, parse_voice_fx

SR = 44100


@pytest.fixture(scope="module")
def dream():
    """The first sentences of the dream, spoken by the default voice and laid out as in a render."""
    script = read_script(DEFAULT_SCRIPT)
    planned = plan_segments(script, rate=0.9)[:8]
    assert all(s.spoken for s in planned)
    audio = synthesize(
        [s.text for s in planned],
        voice="piper:joe",
        rate=0.9,
        sample_rate=SR,
        cache=SpeechCache(),
        finish_with=limit_crest,
    )
    timeline = layout(
        planned,
        [len(a) for a in audio],
        sample_rate=SR,
        lead_in_s=1.0,
        tail_s=4.0,
        scene_names=[s.name for s in script.scenes],
    )
    return timeline, audio


def _stem(timeline, audio, fx, chunk=32768):
    stream = VoiceBus(timeline, audio, fx=fx).stream()
    parts = [
        stream.render(min(chunk, timeline.length - s)) for s in range(0, timeline.length, chunk)
    ]
    return np.concatenate(parts)


def _sentence_loudness(x, timeline):
    return np.array(
        [integrated_loudness(x[s.start : s.end].astype(np.float64), SR) for s in timeline.segments]
    )


@pytest.mark.slow
def test_sentences_sit_together_with_the_chain_on(dream):
    timeline, audio = dream
    dry = _sentence_loudness(_stem(timeline, audio, None), timeline)
    wet = _sentence_loudness(_stem(timeline, audio, parse_voice_fx("auto")), timeline)
    assert dry.std() > 0.5  # the voice does vary from sentence to sentence
    assert wet.std() <= 0.7 * dry.std(), (dry.round(2), wet.round(2))
    # The chain keeps the voice where it was against the ambience (within 1 LU overall).
    assert abs(np.mean(wet) - np.mean(dry)) < 1.0


@pytest.mark.slow
def test_reverb_tail_rings_into_the_pauses_and_belongs_to_the_voice(dream):
    timeline, audio = dream
    dry = _stem(timeline, audio, None).astype(np.float64)
    wet = _stem(timeline, audio, parse_voice_fx("hall")).astype(np.float64)
    for seg in timeline.segments[:-1]:  # each one followed by a pause
        after = slice(seg.end + SR // 10, seg.end + SR // 4)
        assert np.all(dry[after] == 0.0)  # a dry voice stops dead
        speech_db = 10 * np.log10(np.mean(wet[seg.start : seg.end] ** 2))
        tail_db = 10 * np.log10(np.mean(wet[after] ** 2) + 1e-30)
        assert -60 < tail_db - speech_db < -15  # audible, but well under the voice
    # The two ears hear different reflections: the room is wide.
    tail = wet[timeline.segments[0].end + SR // 10 : timeline.segments[0].end + SR // 2]
    assert np.corrcoef(tail[:, 0], tail[:, 1])[0, 1] < 0.9


@pytest.mark.slow
def test_high_pass_and_de_esser_shape_the_spectrum(dream):
    # Rumble under a voice: a 40 Hz hum beside a 1 kHz tone, at speech level.
    t = np.arange(10 * SR) / SR
    hum = (0.07 * np.sin(2 * np.pi * 40 * t) + 0.07 * np.sin(2 * np.pi * 1000 * t)).astype(
        np.float32
    )
    chain = VoiceChain(
        STYLES["dry"],
        SR,
        lambda start, n: (
            hum[start : start + n] if start + n <= len(hum) else np.zeros(n, np.float32)
        ),
    )
    out = chain.render(len(hum))[SR:]
    before = band_energy_db(hum[SR:], SR, 30, 50) - band_energy_db(hum[SR:], SR, 900, 1100)
    after = band_energy_db(out, SR, 30, 50) - band_energy_db(out, SR, 900, 1100)
    assert after - before < -10  # rumble cut by more than 10 dB against the voice band
    # Sibilance: the de-esser takes the band above 6 kHz of the real voice down, and leaves its body alone.
    timeline, audio = dream
    plain = _stem(timeline, audio, parse_voice_fx("dry,deess_ratio=1"))
    deessed = _stem(timeline, audio, parse_voice_fx("dry"))
    assert band_energy_db(deessed, SR, 6000, 12000) - band_energy_db(plain, SR, 6000, 12000) < -3
    assert abs(band_energy_db(deessed, SR, 200, 2000) - band_energy_db(plain, SR, 200, 2000)) < 1.0


@pytest.mark.slow
def test_deterministic_and_independent_of_chunk_size(dream):
    timeline, audio = dream
    fx = parse_voice_fx("gentle")
    whole = _stem(timeline, audio, fx, chunk=timeline.length)
    assert np.array_equal(_stem(timeline, audio, fx), whole)
    assert np.array_equal(_stem(timeline, audio, fx, chunk=1000), whole)
    assert np.array_equal(_stem(timeline, audio, fx, chunk=44100), whole)


def test_silence_costs_nothing_and_stays_exactly_silent():
    sr = 16000
    calls = []

    def source(start, n):
        calls.append(start)
        x = np.zeros(n, dtype=np.float32)
        if start == 0:
            x[:4000] = 0.1 * np.sin(np.arange(4000) * 0.2)
        return x

    chain = VoiceChain(STYLES["hall"], sr, source)
    out = chain.render(60 * sr)
    assert np.abs(out[: sr // 2]).max() > 0.01
    # The hall dies away, then the chain stops processing: the rest is exact zeros.
    silent_from = np.flatnonzero(np.abs(out).max(axis=1) > 0)[-1] + 1
    assert silent_from < 15 * sr and np.all(out[silent_from:] == 0)


def test_voice_fx_values():
    assert parse_voice_fx("none") is None
    assert parse_voice_fx("auto") == STYLES["gentle"]
    assert parse_voice_fx("auto", {"reverb": "hall"}).reverb == "hall"
    assert parse_voice_fx("hall,reverb_mix=0.3") == dataclasses.replace(
        STYLES["hall"], reverb_mix=0.3
    )
    for bad in (
        "cathedral",
        "room,size=3",
        "room,reverb_mix=2",
        "room,reverb_mix",
        "room,reverb=cave",
    ):
        with pytest.raises(SettingsError):
            parse_voice_fx(bad)


def test_bad_voice_fx_is_refused_in_one_line(tmp_path, capsys):
    script = tmp_path / "s.md"
    script.write_text("Hello.\n", encoding="utf-8")
    code = main(
        [
            "render",
            str(script),
            "-o",
            str(tmp_path / "o.wav"),
            "--voice-fx",
            "room,reverb_mix=5",
            "--progress",
            "off",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "reverb_mix" in err
    bad_preset = tmp_path / "p.toml"
    bad_preset.write_text('[voice]\nreverb = "cave"\n[layers.drone]\n', encoding="utf-8")
    code = main(
        [
            "render",
            str(script),
            "-o",
            str(tmp_path / "o.wav"),
            "--soundscape",
            str(bad_preset),
            "--progress",
            "off",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "p.toml" in err and "cave" in err


@pytest.mark.parametrize(
    "fx_text",
    ["gentle", "hall", "dry,deess_ratio=1", "gentle,deess_hz=9000", "gentle,deess_hz=12000"],
)
@pytest.mark.parametrize("sample_rate", [8000, 11025, 11999, 16000, 22050, 24000])
def test_the_sample_rate_check_says_exactly_when_the_chain_can_run(fx_text, sample_rate):
    """The check before synthesis agrees with the chain itself: it passes iff the chain runs."""
    fx = parse_voice_fx(fx_text)
    try:
        check_for_sample_rate(fx, sample_rate)
        refused = None
    except SettingsError as exc:
        refused = str(exc)
    tone = (0.1 * np.sin(np.arange(sample_rate) * 2 * np.pi * 440 / sample_rate)).astype(np.float32)

    def source(start, n):
        out = np.zeros(n, dtype=np.float32)
        part = tone[start : start + n]
        out[: len(part)] = part
        return out

    try:
        y = VoiceChain(fx, sample_rate, source).render(sample_rate)
        ran = bool(np.isfinite(y).all() and np.abs(y).max() > 0.01)
    except ValueError:
        ran = False
    assert ran == (refused is None), (fx_text, sample_rate, refused)
    if refused:
        assert "\n" not in refused and "Hz" in refused and str(sample_rate) in refused


@pytest.mark.parametrize(
    "args",
    [
        ["--sample-rate", "8000"],
        ["--sample-rate", "12000", "--soundscape", "PRESET"],
        ["--sample-rate", "16000", "--voice-fx", "gentle,deess_hz=9000"],
    ],
)
def test_a_chain_the_sample_rate_cannot_carry_is_refused_before_any_speech(
    tmp_path, capsys, args, _private_speech_cache
):
    """Once ``ValueError: Digital filter critical frequencies…`` after the speech was spoken."""
    script = tmp_path / "s.md"
    script.write_text(f"Words nobody has cached yet, {args[-1]}.\n", encoding="utf-8")

    def spoken():  # the speech cache's takes, not its list of installed voices
        return sorted(p.name for p in _private_speech_cache.rglob("*") if "voices" not in p.name)

    preset = tmp_path / "p.toml"  # the preset's [voice] tunes the ``auto`` chain
    preset.write_text("[voice]\ndeess_hz = 7000\n[layers.drone]\n", encoding="utf-8")
    args = [str(preset) if a == "PRESET" else a for a in args]
    before = spoken()
    out = tmp_path / "o.wav"
    code = main(
        ["render", str(script), "-o", str(out), "--voice", "pyttsx3", "--progress", "off", *args]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "deess_hz" in err, err
    assert "Traceback" not in err and not out.exists()
    assert spoken() == before  # nothing was spoken


@pytest.mark.slow
def test_the_voice_chain_thread_gives_the_same_mix_and_stops_with_the_consumer(dream):
    import threading

    from meditation.mix import mix_chunks

    timeline, audio = dream
    bus = VoiceBus(timeline, audio, fx=parse_voice_fx("room"))
    ahead = np.concatenate(
        [c.mix for c in mix_chunks(timeline, bus, None, fade_in_s=0, fade_out_s=0)]
    )
    assert np.array_equal(ahead, _stem(timeline, audio, parse_voice_fx("room")))
    # A consumer that stops early leaves no thread behind.
    stream = mix_chunks(timeline, bus, None, chunk=4096)
    next(stream)
    assert any(t.name == "meditation-voice" for t in threading.enumerate())
    stream.close()
    assert not any(t.name == "meditation-voice" for t in threading.enumerate())


def test_a_failure_in_the_voice_thread_reaches_the_mixer():
    from meditation.mix import _made_ahead

    def chunks():
        yield np.zeros(4)
        raise OSError("the voice chain broke")

    made = _made_ahead(chunks())
    assert np.array_equal(next(made), np.zeros(4))
    with pytest.raises(OSError, match="the voice chain broke"):
        next(made)


@pytest.fixture(scope="module")
def dream_heart():
    """The dream's first sentences spoken by hibari's heart, laid out as in a render."""
    script = read_script(DEFAULT_SCRIPT)
    planned = plan_segments(script, rate=0.9)[:8]
    audio = synthesize(
        [s.text for s in planned],
        voice="hibari:heart",
        rate=0.9,
        sample_rate=SR,
        cache=SpeechCache(),
        finish_with=limit_crest,
    )
    timeline = layout(
        planned,
        [len(a) for a in audio],
        sample_rate=SR,
        lead_in_s=1.0,
        tail_s=4.0,
        scene_names=[s.name for s in script.scenes],
    )
    return timeline, audio


def test_the_chain_tuned_for_heart_levels_and_de_esses_it_as_joes_does_joe(dream_heart):
    timeline, audio = dream_heart
    dry = _sentence_loudness(_stem(timeline, audio, None), timeline)
    wet = _stem(timeline, audio, parse_voice_fx("auto", voice="hibari:heart"))
    spread = _sentence_loudness(wet, timeline)
    assert spread.std() <= 0.65 * dry.std(), (dry.round(2), spread.round(2))
    assert abs(np.mean(spread) - np.mean(dry)) < 1.0

    def deessing(voice):
        plain = _stem(timeline, audio, parse_voice_fx("dry,deess_ratio=1", voice=voice))
        deessed = _stem(timeline, audio, parse_voice_fx("dry", voice=voice))
        return [
            band_energy_db(deessed, SR, low, high) - band_energy_db(plain, SR, low, high)
            for low, high in ((6000, 12000), (4000, 6000), (200, 2000))
        ]

    sibilance, brightness, body = deessing("hibari:heart")
    assert sibilance < -6 and brightness > -3 and abs(body) < 1.0
    # joe's settings would leave heart's "s" louder and dull her vowels instead.
    untuned = deessing("piper:joe")
    assert untuned[0] > sibilance + 1.5 and untuned[1] < brightness - 2
