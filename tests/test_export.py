"""Writing files: formats by suffix, tags, atomic replacement."""

import numpy as np
import pytest
import soundfile as sf

from ffmpeg import decode_errors, probe
from meditation.errors import ExportError
from meditation.export import AudioWriter


def _tone(seconds=2.0, sr=44100):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([x, 0.5 * x], axis=1).astype(np.float32)


@pytest.mark.parametrize("suffix, codec", [(".mp3", "mp3"), (".wav", "pcm_s24le"), (".flac", "flac"), (".ogg", "vorbis")])
def test_each_format_decodes_cleanly_with_the_right_shape(tmp_path, suffix, codec):
    path = tmp_path / f"t{suffix}"
    audio = _tone()
    with AudioWriter(path, sample_rate=44100, title="Tone", artist="Tester") as w:
        for i in range(0, len(audio), 10000):
            w.write(audio[i : i + 10000])
    assert decode_errors(path) == ""
    info = probe(path)
    assert info["codec"].startswith(codec.split("_")[0])
    assert info["sample_rate"] == 44100 and info["channels"] == "stereo"
    assert info["duration"] == pytest.approx(2.0, abs=0.08)
    if suffix != ".wav":
        assert "Tone" in info["text"] and "Tester" in info["text"]
    decoded, sr = sf.read(path, dtype="float32", always_2d=True)
    n = min(len(decoded), len(audio))
    # Lossy codecs keep the level; lossless ones keep the samples.
    tolerance = 1e-5 if suffix in (".wav", ".flac") else 0.02
    assert abs(np.sqrt(np.mean(decoded[:n] ** 2)) - np.sqrt(np.mean(audio[:n] ** 2))) < tolerance


def test_failure_while_writing_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "keep.wav"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with AudioWriter(path, sample_rate=44100) as w:
            w.write(_tone(0.5))
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ExportError, match="unknown output format"):
        AudioWriter(tmp_path / "x.aiff", sample_rate=44100)
    assert list(tmp_path.iterdir()) == []
