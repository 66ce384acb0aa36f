"""Recordings as a layer: seamless, never-repeating loops at a measured loudness, refused early when unusable."""

import os

import numpy as np
import pytest
import soundfile as sf
import soxr
from measure import render_in_chunks
from peak import peak_kib
from scipy import signal

from meditation.cli import main
from meditation.errors import SoundscapeError
from meditation.loudness import integrated_loudness
from meditation.soundscape import AmbienceStream, plan_ambience
from meditation.soundscape.layers.recording import TARGET_LUFS, Recording, inspect_recording
from meditation.timeline import SceneSpan, Timeline

SR = 16000


def make_recording(seconds=60.0, sample_rate=48000, channels=2, level=0.2, seed=0):
    """Surf-like test material: low-passed noise that swells slowly, with a few drips on top.

    Low-passed, so neighbouring samples are close and a hard cut would show
    as a jump far above the recording's own steps.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    sos = signal.butter(4, [60, 700], btype="bandpass", fs=sample_rate, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal((n, channels)), axis=0)
    t = np.arange(n) / sample_rate
    x *= (1.0 + 0.5 * np.sin(2 * np.pi * t / 7.3 + 1.0))[:, None]
    for t0 in rng.uniform(0.0, seconds - 0.2, int(seconds / 2)):
        i = int(t0 * sample_rate)
        k = np.arange(int(0.2 * sample_rate))
        x[i : i + len(k)] += (
            0.8 * np.exp(-k / (0.03 * sample_rate)) * np.sin(2 * np.pi * 900 * k / sample_rate)
        )[:, None] * x.std()
    return (level * x / x.std()).astype(np.float32)


@pytest.fixture(scope="module")
def rec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "surf.flac"
    sf.write(path, make_recording(), 48000)
    return path


def _bed_ambience(path, seconds, seed=1):
    length = int(seconds * SR)
    timeline = Timeline(SR, length, (), (SceneSpan("", 0, length),))
    plan = plan_ambience(
        "none", script=None, timeline=timeline, seed=seed, beds=[(str(path), 0.0)]
    )  # level 0: the layer as it is
    return AmbienceStream(plan)


@pytest.fixture(scope="module")
def twenty_minutes(rec_path):
    """20 minutes of the bed as the mixer gets it, and where its joins are."""
    ambience = _bed_ambience(rec_path, 20 * 60)
    parts = [ambience.render(32768)["bed"] for _ in range(20 * 60 * SR // 32768)]
    layer = ambience._layers["bed"]
    return np.concatenate(parts).astype(np.float64), list(layer.joins), float(layer._gain)


def _own(rec_path, gain):
    """The recording at the render's rate and level: the yardstick for steps and levels."""
    x, sr = sf.read(rec_path, dtype="float64", always_2d=True)
    return soxr.resample(x, sr, SR) * gain


def _levels_db(x, window):
    frames = len(x) // window
    x = x[: frames * window].reshape(frames, -1)
    return 10 * np.log10(np.mean(x * x, axis=1) + 1e-20)


@pytest.mark.slow
def test_twenty_minutes_have_no_seam(twenty_minutes, rec_path):
    x, joins, gain = twenty_minutes
    own = _own(rec_path, gain)
    assert len(joins) > 20  # about one join every half minute
    own_step = np.abs(np.diff(own, axis=0))
    typical = np.percentile(own_step, 99.9)
    largest = own_step.max()
    steps = np.abs(np.diff(x, axis=0))
    for c in joins:
        if c + SR < len(x):
            # Around every join, no step beyond what the recording itself does.
            assert steps[c - SR : c + SR].max() <= 1.1 * largest
    assert np.percentile(steps, 99.9) <= 1.1 * typical
    # No level dip: 50 ms windows never fall 3 dB below the recording's own quietest.
    window = SR // 20
    assert (
        _levels_db(x.mean(axis=1), window).min() >= _levels_db(own.mean(axis=1), window).min() - 3.0
    )
    # The yardsticks would catch a seam: a hard cut between two offsets, or a 100 ms gap.
    # (a hard cut from a crest to a trough, as a careless loop makes at its seam)
    i = int(np.argmax(own[: 20 * SR, 0]))
    j = 30 * SR + int(np.argmin(own[30 * SR :, 0]))
    cut = np.concatenate([own[: i + 1], own[j:]])
    assert np.abs(np.diff(cut, axis=0)).max() > 1.1 * largest
    gap = own.copy()
    gap[30 * SR : 30 * SR + SR // 10] = 0
    assert (
        _levels_db(gap.mean(axis=1), window).min()
        < _levels_db(own.mean(axis=1), window).min() - 3.0
    )


def longest_exact_repeat_s(x, sample_rate):
    """Longest stretch (seconds) that occurs twice, sample for sample: runs of equal offset between repeated 3-sample keys."""
    v = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    keys = v[:-2] * np.uint64(0x9E3779B97F4A7C15) ^ v[1:-1] * np.uint64(0xC2B2AE3D27D4EB4F) ^ v[2:]
    order = np.argsort(keys, kind="stable")
    same = keys[order][1:] == keys[order][:-1]
    offset = np.full(len(keys), -1, dtype=np.int64)
    offset[order[1:][same]] = (
        order[1:][same] - order[:-1][same]
    )  # distance to the previous occurrence
    change = np.flatnonzero(np.diff(offset) != 0)
    bounds = np.concatenate([[-1], change, [len(offset) - 1]])
    runs = np.diff(bounds)
    valued = offset[bounds[1:]] > 0
    return float(runs[valued].max(initial=0) + 2) / sample_rate


@pytest.mark.slow
def test_longest_exact_repeat_is_far_shorter_than_the_track(twenty_minutes, rec_path):
    x, _, gain = twenty_minutes
    inner = x[15 * SR : -15 * SR, 0]
    assert (
        longest_exact_repeat_s(inner, SR) < 60.0
    )  # at most one segment, under the recording's length
    # The measure finds a plain loop's repeat: 3 minutes of the 60 s file looped repeat for 2 minutes.
    own = _own(rec_path, gain)[:, 0].astype(np.float32)
    assert longest_exact_repeat_s(np.tile(own, 3), SR) == pytest.approx(120.0, abs=0.5)


@pytest.mark.slow
def test_quiet_and_loud_recordings_sit_at_the_same_loudness(tmp_path):
    sf.write(tmp_path / "loud.wav", make_recording(20, 44100, seed=1, level=0.3), 44100)
    sf.write(
        tmp_path / "quiet.ogg", make_recording(20, 22050, channels=1, seed=2, level=0.03), 22050
    )  # 20 dB down, mono, Ogg
    preset = tmp_path / "two.toml"
    preset.write_text(
        '[layers.loud]\nfile = "loud.wav"\n[layers.quiet]\nfile = "quiet.ogg"\n', encoding="utf-8"
    )
    quiet_in = inspect_recording(tmp_path / "quiet.ogg").loudness_lufs
    loud_in = inspect_recording(tmp_path / "loud.wav").loudness_lufs
    assert loud_in - quiet_in > 17.0
    stems = tmp_path / "stems"
    args = [
        "ambient",
        "--soundscape",
        str(preset),
        "--duration",
        "60",
        "--stems",
        str(stems),
        "-o",
        str(tmp_path / "mix.wav"),
    ]
    assert main([*args, "--sample-rate", str(SR), "--progress", "off"]) == 0
    loud, _ = sf.read(stems / "loud.wav", dtype="float64", always_2d=True)
    quiet, _ = sf.read(stems / "quiet.wav", dtype="float64", always_2d=True)
    assert abs(integrated_loudness(loud, SR) - integrated_loudness(quiet, SR)) < 1.0


@pytest.mark.slow
@pytest.mark.parametrize(
    "fmt,suffix", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")]
)
def test_reads_common_formats_mono_and_stereo_at_any_rate(tmp_path, fmt, suffix):
    x = make_recording(6, 32000, channels=1, seed=3)
    mono, stereo = tmp_path / f"m{suffix}", tmp_path / f"s{suffix}"
    sf.write(mono, x, 32000, format=fmt)
    sf.write(stereo, np.repeat(x, 2, axis=1), 32000, format=fmt)
    a, b = inspect_recording(mono), inspect_recording(stereo)
    assert a.channels == 1 and b.channels == 2 and a.duration_s == pytest.approx(6.0, abs=0.1)
    assert a.loudness_lufs == pytest.approx(b.loudness_lufs, abs=0.3)  # mono is heard in both ears
    y = Recording(sample_rate=SR, rng=np.random.default_rng(0), params={"file": str(mono)}).render(
        20 * SR
    )
    level = integrated_loudness(y.astype(np.float64)[2 * SR :], SR)
    assert level == pytest.approx(TARGET_LUFS, abs=1.0)


@pytest.mark.slow
def test_chunked_render_equals_whole(rec_path):
    whole = Recording(
        sample_rate=SR, rng=np.random.default_rng(5), params={"file": str(rec_path)}
    ).render(150 * SR)
    for chunk in (1000, 8192, 65537):
        layer = Recording(
            sample_rate=SR, rng=np.random.default_rng(5), params={"file": str(rec_path)}
        )
        assert np.array_equal(render_in_chunks(layer, 150 * SR, chunk), whole)


def test_preset_file_is_relative_to_the_preset(tmp_path, rec_path, monkeypatch):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "rain.flac").write_bytes(rec_path.read_bytes())
    (folder / "rain.toml").write_text(
        '[layers.rain]\nfile = "rain.flac"\nlevel_db = -6.0\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    timeline = Timeline(SR, 5 * SR, (), (SceneSpan("", 0, 5 * SR),))
    plan = plan_ambience(str(folder / "rain.toml"), script=None, timeline=timeline, seed=1)
    assert plan.preset.layers["rain"].params["file"] == str(folder / "rain.flac")
    assert np.abs(AmbienceStream(plan).render(5 * SR)["rain"]).max() > 0


SCRIPT = "# Rest\n\nA sentence nobody has cached: the lamp of {n}.\n"


@pytest.mark.parametrize(
    "problem",
    ["missing", "empty", "garbage", "silent", "short", "1 Hz", "NaN", "FIFO", "/dev/null"],
)
def test_unusable_recording_is_refused_in_one_line_before_any_speech(
    tmp_path, capsys, problem, _private_speech_cache
):
    bed = tmp_path / "bed.wav"
    if problem == "empty":
        bed.write_bytes(b"")
    elif problem == "garbage":
        bed.write_text("not audio at all\n" * 50)
    elif problem == "silent":
        sf.write(bed, np.zeros((5 * 8000, 2), dtype=np.float32), 8000)
    elif problem == "short":
        sf.write(bed, make_recording(0.5, 8000, seed=4), 8000)
    elif problem == "1 Hz":  # once a ZeroDivisionError in the master, after the speech
        sf.write(bed, np.full((5, 1), 0.5, dtype=np.float32), 1, subtype="FLOAT")
    elif problem == "NaN":  # once "silent"
        sick = make_recording(5.0, 8000, seed=4)
        sick[20000:20100] = np.nan
        sf.write(bed, sick, 8000, subtype="FLOAT")
    elif problem == "FIFO":  # once "empty" (and opening one for reading can hang)
        os.mkfifo(bed)
    elif problem == "/dev/null":  # once "empty"
        bed.symlink_to("/dev/null")
    script = tmp_path / "s.md"
    script.write_text(SCRIPT.format(n=problem), encoding="utf-8")
    before = sorted(p.name for p in _private_speech_cache.rglob("*"))
    out = tmp_path / "out.wav"
    code = main(
        [
            "render",
            str(script),
            "-o",
            str(out),
            "--voice",
            "pyttsx3",
            "--bed",
            f"{bed}:-6",
            "--progress",
            "off",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "bed.wav" in err, err
    assert {
        "missing": "does not exist",
        "empty": "empty",
        "garbage": "cannot read",
        "silent": "silent",
        "short": "too short",
        "1 Hz": "sample rate of 1 Hz; at least 8000 Hz",
        "NaN": "not numbers (NaN or infinity), the first at 2.50 s",
        "FIFO": "is a named pipe (FIFO), not an audio file",
        "/dev/null": "is a character device, not an audio file",
    }[problem] in err
    assert not out.exists()
    assert sorted(p.name for p in _private_speech_cache.rglob("*")) == before  # nothing was spoken


def test_unusable_recording_in_a_preset_names_the_preset(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('[layers.rain]\nfile = "nowhere.flac"\n', encoding="utf-8")
    with pytest.raises(SoundscapeError, match=r"p\.toml.*nowhere\.flac.*does not exist"):
        timeline = Timeline(SR, SR, (), (SceneSpan("", 0, SR),))
        plan_ambience(str(preset), script=None, timeline=timeline, seed=1)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_track(tmp_path, rec_path):
    def ambient(minutes):
        args = ["ambient", "--soundscape", "none", "--bed", rec_path, "--duration", f"{minutes}m"]
        return [
            *args,
            "-o",
            tmp_path / f"{minutes}.flac",
            "--sample-rate",
            "8000",
            "--progress",
            "off",
        ]

    ten, sixty = peak_kib(ambient(10), ambient(60))
    assert sixty <= 1.3 * ten, (ten, sixty)


@pytest.mark.slow
def test_render_with_a_bed_alone_under_the_voice(tmp_path, rec_path):
    script = tmp_path / "s.md"
    script.write_text("# Rest\n\nListen to the surf. Let it carry you.\n", encoding="utf-8")
    stems = tmp_path / "stems"
    args = [
        "render",
        str(script),
        "-o",
        str(tmp_path / "o.wav"),
        "--voice",
        "pyttsx3",
        "--soundscape",
        "none",
    ]
    assert (
        main(
            [
                *args,
                "--bed",
                f"{rec_path}:-6",
                "--stems",
                str(stems),
                "--sample-rate",
                str(SR),
                "--progress",
                "off",
            ]
        )
        == 0
    )
    assert {p.stem for p in stems.glob("*.wav")} == {"voice", "bed"}
    bed, _ = sf.read(stems / "bed.wav", dtype="float64", always_2d=True)
    levels = _levels_db(bed.mean(axis=1)[3 * SR : -8 * SR], SR // 2)  # clear of the track fades
    assert levels.min() > -60  # the bed plays throughout, under the voice (ducked, never gone)


def test_a_bed_carries_no_dc_into_the_track(tmp_path, capsys):
    """A bed with a 0.5 offset once left 0.3 full scale of DC in a "-16 LUFS" track."""
    noisy = make_recording(10.0, 48000, seed=7) + np.float32(0.5)
    sf.write(tmp_path / "offset.wav", noisy, 48000, subtype="FLOAT")
    out = tmp_path / "a.wav"
    args = ["ambient", "--soundscape", "none", "--duration", "20", "--progress", "off"]
    assert main([*args, "--bed", str(tmp_path / "offset.wav"), "-o", str(out)]) == 0
    x, sr = sf.read(out)
    rms = float(np.sqrt(np.mean(x**2)))
    assert rms > 0.03  # the noise is there
    assert np.abs(x.mean(axis=0)).max() < 1e-3 * rms  # the offset is not
    assert abs(integrated_loudness(x, sr) - -16.0) < 0.5
    # DC alone is nothing to hear.
    sf.write(tmp_path / "dc.wav", np.full((5 * 8000, 1), 0.5, np.float32), 8000, subtype="FLOAT")
    capsys.readouterr()
    assert main([*args, "--bed", str(tmp_path / "dc.wav"), "-o", str(tmp_path / "b.wav")]) == 2
    err = capsys.readouterr().err
    assert "dc.wav" in err and "silent" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b.wav").exists()
