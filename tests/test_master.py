"""Loudness meter (against pyloudnorm and the EBU reference level) and the true-peak limiter."""

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile

from meditation.limiter import TruePeakLimiter
from meditation.loudness import LoudnessMeter, integrated_loudness, true_peak_db


def test_meter_agrees_with_pyloudnorm_when_fed_in_chunks(rng):
    sr = 48000
    x = (rng.standard_normal((sr * 12, 2)) * 0.1).astype(np.float32)
    x[sr * 3 : sr * 6] *= 0.02  # a quiet passage that the relative gate should drop
    meter = LoudnessMeter(sr)
    for i in range(0, len(x), 7777):
        meter.feed(x[i : i + 7777])
    assert meter.integrated_lufs() == pytest.approx(
        pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64)), abs=0.05
    )


def test_meter_reads_the_ebu_reference_tone():
    # EBU Tech 3341: a 1 kHz sine at -23 dBFS in both channels reads -23 LUFS (±0.1 LU).
    sr = 48000
    t = np.arange(sr * 20) / sr
    tone = 10 ** (-23 / 20) * np.sin(2 * np.pi * 1000 * t)
    assert integrated_loudness(np.stack([tone, tone], axis=1), sr) == pytest.approx(-23.0, abs=0.1)


def _tone_bursts(levels_dbfs_and_seconds, sr):
    """A 1 kHz stereo sine whose level steps through (dBFS, seconds) pairs, its phase continuous."""
    gains = np.concatenate(
        [np.full(int(round(s * sr)), 10 ** (db / 20)) for db, s in levels_dbfs_and_seconds]
    )
    tone = gains * np.sin(2 * np.pi * 1000 * np.arange(len(gains)) / sr)
    return np.stack([tone, tone], axis=1).astype(np.float32)


# EBU Tech 3341 (v4, 2016), table 1, test cases 3 to 5: each reads -23.0 LUFS (+-0.1 LU).
# Case 3: the relative gate (-10 LU) drops the -36 dBFS bursts.
# Case 4: the absolute gate (-70 LUFS) drops the -72 dBFS bursts too.
# Case 5: a louder middle is averaged in energy, not in dB (6 dB apart, it reads -23 not -24).
EBU_3341_GATING = {
    "case 3": [(-36, 10), (-23, 60), (-36, 10)],
    "case 4": [(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)],
    "case 5": [(-26, 20), (-20, 20.1), (-26, 20)],
}


@pytest.mark.parametrize("case", sorted(EBU_3341_GATING))
def test_meter_reads_the_ebu_gating_tone_bursts(case):
    sr = 48000
    x = _tone_bursts(EBU_3341_GATING[case], sr)
    assert integrated_loudness(x, sr) == pytest.approx(-23.0, abs=0.1)
    # Streamed in blocks that fall across the 400 ms gating blocks and the bursts' edges.
    meter = LoudnessMeter(sr)
    for i in range(0, len(x), 4801):
        meter.feed(x[i : i + 4801])
    assert meter.integrated_lufs() == pytest.approx(-23.0, abs=0.1)


def test_without_its_gates_the_ebu_bursts_would_read_otherwise():
    # The gating cases can fail: ungated, case 3 averages to -24.18 and case 4 to -25.15 "LUFS"
    # (a 1 kHz sine at -23 dBFS in both ears reads -23, so its energy is the scale).
    sr = 48000
    for case, ungated in (("case 3", -24.18), ("case 4", -25.15)):
        x = _tone_bursts(EBU_3341_GATING[case], sr).astype(np.float64)
        assert 10 * np.log10(2 * np.mean(x[:, 0] ** 2)) == pytest.approx(ungated, abs=0.02)


@pytest.mark.parametrize("chunk", [512, 4096, 44100])
def test_limiter_holds_true_peak_and_keeps_quiet_audio_exact(rng, chunk):
    sr = 44100
    x = (rng.standard_normal((sr * 4, 2)) * 0.05).astype(np.float32)
    x[sr : sr + 2000] *= 40  # a loud burst, 20+ dB over the ceiling
    limiter = TruePeakLimiter(sr, ceiling_db=-1.0)
    out = np.concatenate(
        [limiter.process(x[i : i + chunk]) for i in range(0, len(x), chunk)] + [limiter.flush()]
    )
    assert out.shape == x.shape
    assert true_peak_db(out) <= -0.95
    quiet = slice(sr * 2, sr * 4)  # far from the burst: untouched, sample for sample
    assert np.array_equal(out[quiet], x[quiet])


def test_limiter_output_does_not_depend_on_chunk_size(rng):
    sr = 44100
    x = (rng.standard_normal((sr * 2, 2)) * 0.5).astype(np.float32)
    outs = []
    for chunk in (1000, 65536):
        limiter = TruePeakLimiter(sr, ceiling_db=-1.0)
        outs.append(
            np.concatenate(
                [limiter.process(x[i : i + chunk]) for i in range(0, len(x), chunk)]
                + [limiter.flush()]
            )
        )
    assert np.array_equal(outs[0], outs[1])


def _chunks_of(x, size=10000):
    from meditation.mix import MixChunk

    def chunks(keep_layers):
        for start in range(0, len(x), size):
            yield MixChunk(start, x[start : start + size], None, {})

    return chunks


def test_measure_pass_on_two_threads_equals_one_thread_and_spools_every_sample(rng):
    from meditation.measure import MeasurePass
    from meditation.measure import measure as _measure

    sr = 44100
    x = (rng.standard_normal((sr * 5, 2)) * 0.1).astype(np.float32)
    with MeasurePass(sr, None, spool=True) as measured:
        _measure(_chunks_of(x), measured, len(x), sr)
        measured.spool.seek(0)
        assert measured.spool.read() == x.tobytes()
        assert measured.meter.integrated_lufs() == integrated_loudness(x, sr)
        assert measured.peaks.finish_db() == true_peak_db(x)
    assert measured.spool is None  # closed with the pass


def test_measure_pass_reports_a_spool_failure_instead_of_hanging(rng):
    from meditation.measure import measure as _measure

    class FullDisk:
        def write(self, data):
            raise OSError(28, "No space left on device")

    from meditation.measure import MeasurePass

    x = (rng.standard_normal((44100 * 3, 2)) * 0.1).astype(np.float32)
    measured = MeasurePass(44100, None, spool=True)
    measured.spool.close()
    measured.spool = FullDisk()
    with pytest.raises(OSError, match="No space"):
        _measure(_chunks_of(x, 1000), measured, len(x), 44100)


def _sixteen_times_oversampled_peak(x):
    """An independent true-peak reading: scipy's polyphase resampler at 16×, no shortcuts."""
    from scipy import signal

    return float(
        20 * np.log10(np.abs(signal.resample_poly(x.astype(np.float64), 16, 1, axis=0)).max())
    )


@pytest.mark.parametrize("sizes", [(32768,), (1, 7, 500), (11, 4096), (100000,)])
def test_true_peak_meter_streamed_in_any_blocks_reads_the_whole_signal(rng, sizes):
    from meditation.loudness import TruePeakMeter

    sr = 44100
    t = np.arange(sr * 2) / sr
    # A bed of noise with a burst at a quarter of the rate whose peaks all fall between samples (3 dB over them).
    x = 0.01 * rng.standard_normal((len(t), 2))
    x[30000:30400] += 0.6 * np.sin(2 * np.pi * (sr / 4) * t[:400] + np.pi / 4)[:, None]
    meter = TruePeakMeter()
    i, k = 0, 0
    while i < len(x):
        step = sizes[k % len(sizes)]
        meter.feed(x[i : i + step].astype(np.float32))
        i, k = i + step, k + 1
    streamed = meter.finish_db()
    assert streamed == pytest.approx(true_peak_db(x.astype(np.float32)), abs=1e-9)
    # Inter-sample: well over the largest sample, and where a 16× reading puts it.
    assert streamed > 20 * np.log10(np.abs(x).max()) + 1.0
    assert streamed == pytest.approx(_sixteen_times_oversampled_peak(x), abs=0.3)


def test_a_peak_between_two_blocks_is_read_across_the_boundary():
    from meditation.loudness import TruePeakMeter

    sr = 44100
    n = sr // 10
    t = np.arange(n) / sr
    tone = 0.5 * np.sin(2 * np.pi * (sr / 4.2) * t + 0.3)[:, None] * np.ones((1, 2))
    for cut in range(n // 2 - 8, n // 2 + 8):
        meter = TruePeakMeter()
        meter.feed(tone[:cut])
        meter.feed(tone[cut:])
        assert meter.finish_db() == pytest.approx(true_peak_db(tone), abs=1e-9)


def test_a_render_the_limiter_leaves_alone_reports_what_its_file_holds(tmp_path, rng):
    """The final pass skips metering when the limiter cannot act: its figures must still be the file's."""
    import soundfile

    from meditation.export import Metadata
    from meditation.master import master_to_file
    from meditation.settings import RenderSettings

    sr = 44100
    x = (rng.standard_normal((sr * 6, 2)) * 0.02).astype(
        np.float32
    )  # quiet and peakless: gain only
    out = tmp_path / "quiet.wav"
    settings = RenderSettings(output=out, loudness_lufs=-20.0)
    mastered = master_to_file(
        _chunks_of(x), settings, title="t", total=len(x), metadata=Metadata(title="t")
    )
    written, _ = soundfile.read(out, dtype="float32", always_2d=True)
    assert mastered.loudness_lufs == pytest.approx(integrated_loudness(written, sr), abs=0.01)
    assert mastered.loudness_lufs == pytest.approx(-20.0, abs=0.05)
    assert mastered.true_peak_db == pytest.approx(true_peak_db(written), abs=0.01)
    # A loud one that the limiter does touch is metered, and lands too.
    y = x * 40
    y[sr : sr + 300] *= 3
    loud = tmp_path / "loud.wav"
    mastered = master_to_file(
        _chunks_of(y),
        RenderSettings(output=loud, loudness_lufs=-9.0),
        title="t",
        total=len(y),
        metadata=Metadata(title="t"),
    )
    written, _ = soundfile.read(loud, dtype="float32", always_2d=True)
    assert mastered.loudness_lufs == pytest.approx(integrated_loudness(written, sr), abs=0.01)
    assert mastered.true_peak_db == pytest.approx(true_peak_db(written), abs=0.01)
    assert mastered.true_peak_db <= -1.0


@pytest.mark.parametrize("loud", [False, True])
def test_a_measure_pass_without_the_true_peak_gives_the_same_file_and_figures(tmp_path, rng, loud):
    """Lossy renders whose encoder keeps one core (AAC, Opus, Vorbis) leave the true peak to the final
    pass (``mix_true_peak_first``); MP3, encoded on every core, and lossless files take it first.
    Either way: same bytes, same figures."""
    from meditation.export import Metadata
    from meditation.master import master_to_file, mix_true_peak_first
    from meditation.measure import MeasurePass, measure
    from meditation.settings import RenderSettings

    assert not mix_true_peak_first(Path("a.m4a")) and not mix_true_peak_first(Path("a.opus"))
    assert mix_true_peak_first(Path("a.mp3")) and mix_true_peak_first(Path("a.WAV"))
    sr = 44100
    y = (rng.standard_normal((sr * 6, 2)) * (0.8 if loud else 0.02)).astype(np.float32)
    y[sr : sr + 300] *= 3  # loud: a burst the limiter must hold; quiet: gain only
    results = []
    for true_peak in (True, False):
        out = tmp_path / f"{true_peak}.wav"
        settings = RenderSettings(output=out, loudness_lufs=-9.0 if loud else -20.0)
        measured = MeasurePass(sr, None, spool=True, true_peak=true_peak)
        measure(_chunks_of(y), measured, len(y), sr)
        mastered = master_to_file(
            _chunks_of(y),
            settings,
            title="t",
            total=len(y),
            metadata=Metadata(title="t"),
            measured=measured,
        )
        written, _ = soundfile.read(out, dtype="float32", always_2d=True)
        assert mastered.true_peak_db == pytest.approx(true_peak_db(written), abs=0.01)
        results.append((mastered, out.read_bytes()))
    (with_peak, bytes_with), (without, bytes_without) = results
    assert bytes_with == bytes_without
    assert without.loudness_lufs == pytest.approx(with_peak.loudness_lufs, abs=1e-6)
    assert without.true_peak_db == pytest.approx(with_peak.true_peak_db, abs=1e-6)


def test_a_pass_the_limiter_cannot_touch_writes_the_mix_scaled_as_the_limiter_would(
    tmp_path, rng, monkeypatch
):
    """The final pass leaves the limiter out when the measure pass's true peak says it cannot act:
    the file must hold exactly the mix times the gain, and the same bytes as a pass through the limiter."""
    import soundfile

    from meditation import master
    from meditation.export import Metadata
    from meditation.settings import RenderSettings

    sr = 44100
    x = (rng.standard_normal((sr * 6, 2)) * 0.02).astype(np.float32)
    x[sr : sr + 300] *= 4  # a burst the gain lifts to a dB or two under the ceiling
    target = -20.0

    def render(name):
        out = tmp_path / name
        settings = RenderSettings(output=out, loudness_lufs=target)
        master.master_to_file(
            _chunks_of(x, 7000), settings, title="t", total=len(x), metadata=Metadata(title="t")
        )
        return out

    class Unwanted(master.TruePeakLimiter):
        def process(self, chunk):
            raise AssertionError("the limiter ran where it cannot act")

    monkeypatch.setattr(master, "TruePeakLimiter", Unwanted)
    bypassed = render("bypassed.wav")
    monkeypatch.undo()
    gain = np.float32(10 ** ((target - integrated_loudness(x, sr)) / 20))
    # Near the ceiling (-1.15 dBTP): the limiter looks at these peaks closely.
    assert -3.0 < true_peak_db(x * gain) < -1.2
    written, _ = soundfile.read(bypassed, dtype="int32", always_2d=True)
    expected = tmp_path / "expected.wav"
    soundfile.write(expected, x * gain, sr, subtype="PCM_24")
    assert np.array_equal(written, soundfile.read(expected, dtype="int32", always_2d=True)[0])
    # The same render with the limiter in the loop (it passes every sample, later): the same bytes.
    monkeypatch.setattr(master._MixMeasure, "untouched_by", lambda self, gain, ceiling_db: False)
    assert render("limited.wav").read_bytes() == bypassed.read_bytes()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_limiter_leaves_alone_a_mix_whose_true_peak_is_under_its_ceiling(seed):
    """What lets the final pass leave the limiter out (``_MixMeasure.untouched_by``): scaled to just under
    its ceiling by the measure pass's true peak, sharp crackles pass the limiter untouched; just over, they do not."""
    from meditation.loudness import TruePeakMeter
    from meditation.master import _MixMeasure

    sr = 44100
    x = _crackles(np.random.default_rng(seed), sr, 3)
    peaks = TruePeakMeter()
    for i in range(0, len(x), 4096):
        peaks.feed(x[i : i + 4096])
    mix = _MixMeasure(meter=None, true_peak_db=peaks.finish_db())  # type: ignore[arg-type]
    ceiling_db = -1.15
    for margin_db, untouched in ((-0.002, True), (0.05, False)):
        gain = 10 ** ((ceiling_db + margin_db - mix.true_peak_db) / 20)
        assert mix.untouched_by(gain, ceiling_db) is untouched
        scaled = x * np.float32(gain)
        limiter = TruePeakLimiter(sr, ceiling_db=ceiling_db)
        out = np.concatenate(
            [limiter.process(scaled[i : i + 10000]) for i in range(0, len(x), 10000)]
            + [limiter.flush()]
        )
        assert limiter.engaged is not untouched
        assert np.array_equal(out, scaled) is untouched


def _crackles(rng, sr, seconds):
    """The campfire's sharpest crackles as first written: 0.1-0.6 ms of noise with a 10 µs attack,
    tilted up (energy up to Nyquist), ~7 a second over a quiet bed, loudness spread over 24 dB."""
    from scipy import signal

    from meditation.soundscape.layers.dsp import decaying_noise

    n = int(sr * seconds)
    x = rng.standard_normal((n, 2)) * 0.01
    for start in range(0, n - sr // 10, sr // 7):
        decay = rng.uniform(0.0001, 0.0006)
        grain = decaying_noise(rng, int(8 * decay * sr) + 8, decay, sr, attack_s=1e-5)
        grain = signal.lfilter([1.0, -0.9], [1.0], grain) * np.exp(rng.uniform(-1.6, 1.4))
        pan = rng.uniform(0.3, 1.0)
        x[start : start + len(grain)] += grain[:, None] * np.array([pan, 1.3 - pan])
    return x.astype(np.float32)


@pytest.mark.parametrize("seed", [1, 2])
def test_sharp_crackles_stay_under_the_ceiling_in_an_independent_meter(tmp_path, seed):
    """Clicks with energy up to Nyquist peak between samples far above their samples: the limiter
    must see those peaks (ffmpeg's ebur128 measured the first campfire at +0.4 dBTP)."""
    from ffmpeg import ebur128

    from meditation.export import Metadata
    from meditation.master import master_to_file
    from meditation.settings import RenderSettings

    sr = 44100
    x = _crackles(np.random.default_rng(seed), sr, 8.0)
    out = tmp_path / "crackles.wav"
    mastered = master_to_file(
        _chunks_of(x),
        RenderSettings(output=out, loudness_lufs=-16.0, true_peak_db=-1.0),
        title="t",
        total=len(x),
        metadata=Metadata(title="t"),
    )
    assert 20 * np.log10(np.abs(x).max()) - mastered.true_peak_db > 6  # the limiter did act, hard
    _, peak = ebur128(out)
    assert peak <= -1.0
    assert mastered.true_peak_db <= -1.0
