"""Loudness meter (against pyloudnorm and the EBU reference level) and the true-peak limiter."""

import numpy as np
import pyloudnorm
import pytest

from meditation.master import LoudnessMeter, TruePeakLimiter, integrated_loudness, true_peak_db


def test_meter_agrees_with_pyloudnorm_when_fed_in_chunks(rng):
    sr = 48000
    x = (rng.standard_normal((sr * 12, 2)) * 0.1).astype(np.float32)
    x[sr * 3 : sr * 6] *= 0.02  # a quiet passage that the relative gate should drop
    meter = LoudnessMeter(sr)
    for i in range(0, len(x), 7777):
        meter.feed(x[i : i + 7777])
    assert meter.integrated_lufs() == pytest.approx(pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64)), abs=0.05)


def test_meter_reads_the_ebu_reference_tone():
    # EBU Tech 3341: a 1 kHz sine at -23 dBFS in both channels reads -23 LUFS (±0.1 LU).
    sr = 48000
    t = np.arange(sr * 20) / sr
    tone = 10 ** (-23 / 20) * np.sin(2 * np.pi * 1000 * t)
    assert integrated_loudness(np.stack([tone, tone], axis=1), sr) == pytest.approx(-23.0, abs=0.1)


@pytest.mark.parametrize("chunk", [512, 4096, 44100])
def test_limiter_holds_true_peak_and_keeps_quiet_audio_exact(rng, chunk):
    sr = 44100
    x = (rng.standard_normal((sr * 4, 2)) * 0.05).astype(np.float32)
    x[sr : sr + 2000] *= 40  # a loud burst, 20+ dB over the ceiling
    limiter = TruePeakLimiter(sr, ceiling_db=-1.0)
    out = np.concatenate([limiter.process(x[i : i + chunk]) for i in range(0, len(x), chunk)] + [limiter.flush()])
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
        outs.append(np.concatenate([limiter.process(x[i : i + chunk]) for i in range(0, len(x), chunk)] + [limiter.flush()]))
    assert np.array_equal(outs[0], outs[1])


def _chunks_of(x, size=10000):
    from meditation.mix import MixChunk

    def chunks(keep_layers):
        for start in range(0, len(x), size):
            yield MixChunk(start, x[start : start + size], None, {})

    return chunks


def test_measure_pass_on_two_threads_equals_one_thread_and_spools_every_sample(rng, tmp_path):
    from meditation.master import _measure

    sr = 44100
    x = (rng.standard_normal((sr * 5, 2)) * 0.1).astype(np.float32)
    meter = LoudnessMeter(sr)
    with open(tmp_path / "spool", "w+b") as spool:
        _measure(_chunks_of(x), meter, spool, len(x), sr)
        spool.seek(0)
        assert spool.read() == x.tobytes()
    assert meter.integrated_lufs() == integrated_loudness(x, sr)


def test_measure_pass_reports_a_spool_failure_instead_of_hanging(rng):
    from meditation.master import _measure

    class FullDisk:
        def write(self, data):
            raise OSError(28, "No space left on device")

    x = (rng.standard_normal((44100 * 3, 2)) * 0.1).astype(np.float32)
    with pytest.raises(OSError, match="No space"):
        _measure(_chunks_of(x, 1000), LoudnessMeter(44100), FullDisk(), len(x), 44100)
