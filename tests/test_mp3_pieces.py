"""Issue 21: a long MP3 is encoded in pieces on every core and joined into one stream.

Real LAME (lameenc, in the encoder processes and in this one), real decoders
(ffmpeg's, and libmpg123 through libsndfile): the joined stream must decode
without an error, as long as the input, and as one encoder's stream does.
"""

import subprocess

import numpy as np
import pytest
import soundfile as sf
from ffmpeg import decode_errors, ffmpeg

from meditation._lame_worker import new_encoder
from meditation._threads import available_cores, sharing_cores
from meditation.export import AudioWriter
from meditation.export import mp3frames as M

SR = 44100
FRAME = M.FRAME_SAMPLES


def _programme(seconds: float, seed: int = 3) -> np.ndarray:
    """Speech-like bursts of noise, tones, clicks (short blocks) and silences, in stereo."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    level = np.zeros(n, np.float32)
    at = 0
    while at < n:
        length, gap = int(rng.uniform(0.1, 0.8) * SR), int(rng.uniform(0.05, 0.6) * SR)
        level[at : at + length] = rng.uniform(0.05, 0.4)
        at += length + gap
    noise = rng.standard_normal((n, 2)).astype(np.float32) * level[:, None]
    tone = 0.1 * np.sin(2 * np.pi * 220 * t)[:, None] * (np.sin(2 * np.pi * 0.05 * t) > 0)[:, None]
    clicks = np.zeros((n, 2), np.float32)
    clicks[rng.integers(0, n, 60)] = 0.8
    x = noise + tone + clicks
    x[int(0.45 * n) : int(0.5 * n)] = 0  # a silence, across where a seam may fall
    return np.clip(x, -1, 1).astype(np.float32)


def _pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")


def _one_encoder(pcm: np.ndarray) -> bytes:
    lame = new_encoder(SR, pcm.shape[1])
    return lame.encode(pcm.tobytes()) + lame.flush()


def _pieces(pcm: np.ndarray) -> list[tuple[int, bytes]]:
    """The pieces the encoder processes make, encoded here one after another."""
    out, piece = [], 0
    while True:
        first, end = M.piece_span(piece)
        last = len(pcm) <= end * FRAME
        out.append((first, _one_encoder(pcm[first * FRAME : len(pcm) if last else end * FRAME])))
        if last:
            return out
        piece += 1


def _decode(path) -> np.ndarray:
    raw = subprocess.run(
        [ffmpeg(), "-v", "error", "-i", str(path), "-f", "s16le", "-acodec", "pcm_s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, "<i2").reshape(-1, 2).astype(np.float64)


def _db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x)) + 1e-12)


@pytest.fixture(scope="module")
def long_track(tmp_path_factory):
    """70 s (three pieces, two seams) written through the MP3 encoder, and one encoder's stream."""
    folder = tmp_path_factory.mktemp("pieces")
    x = _programme(70.0)
    path = folder / "long.mp3"
    with AudioWriter(path, sample_rate=SR) as w:
        for i in range(0, len(x), 44100):
            w.write(x[i : i + 44100])
    pcm = _pcm(x)
    reference = folder / "one.mp3"
    one = _one_encoder(pcm)
    reference.write_bytes(M.info_frame(one, samples=len(pcm)) + one)
    return folder, x, pcm, path, reference


def test_a_long_mp3_in_pieces_decodes_cleanly_and_as_one_encoders_stream(long_track):
    _, _, pcm, path, reference = long_track
    assert len(M.frame_offsets(path.read_bytes())) > 2 * M.PIECE_FRAMES  # really in pieces
    assert decode_errors(path) == ""
    ours, theirs = _decode(path), _decode(reference)
    assert ours.shape == theirs.shape == pcm.shape  # gapless: exactly the input's length
    # The joined stream carries the same coded audio except in a few frames near the seams,
    # and where it differs, it differs by much less than the coding noise itself.
    differs = np.flatnonzero(np.any(ours != theirs, axis=1))
    frames = set((differs // FRAME).tolist())
    assert len(frames) < 40
    for frame in frames:
        span = slice(frame * FRAME, (frame + 1) * FRAME)
        coding = _db(theirs[span] - pcm[span])
        assert _db(ours[span] - theirs[span]) < coding - 6, frame
    # No click at a seam: sample-to-sample steps there are no larger than the source's.
    steps = np.abs(np.diff(ours, axis=0)).max()
    assert steps <= np.abs(np.diff(pcm.astype(np.float64), axis=0)).max() * 1.1 + 64


def test_libmpg123_reads_the_joined_stream_as_ffmpeg_does(long_track, capfd):
    _, _, _, path, _ = long_track
    decoded, rate = sf.read(path, dtype="int16")
    assert rate == SR
    reference = _decode(path)
    assert decoded.shape == reference.shape
    assert np.abs(decoded - reference).max() <= 1
    assert "libmpg123" not in capfd.readouterr().err


def test_the_info_frame_counts_and_checksums_the_joined_frames(long_track):
    _, _, pcm, path, _ = long_track
    data = path.read_bytes()
    xing = data.find(b"Xing")
    frame_start = xing - 36  # MPEG-1 stereo: header and 32 bytes of side information
    audio_at = (
        frame_start + M.frame_info(int.from_bytes(data[frame_start : frame_start + 4], "big"))[0]
    )
    audio = data[audio_at:]
    offsets = M.frame_offsets(audio)
    assert offsets[0] == 0
    assert int.from_bytes(data[xing + 8 : xing + 12], "big") == len(offsets)
    assert int.from_bytes(data[xing + 12 : xing + 16], "big") == len(data) - frame_start
    packed = int.from_bytes(data[xing + 141 : xing + 144], "big")
    delay, padding = packed >> 12, packed & 0xFFF
    assert len(offsets) * FRAME == delay + len(pcm) + padding
    # The tag's CRC of the audio frames, chained piece by piece as they were written.
    assert int.from_bytes(data[xing + 152 : xing + 154], "big") == M.crc16(audio)


def test_the_file_is_the_same_whatever_the_number_of_encoder_processes(long_track, tmp_path):
    folder, x, _, path, _ = long_track
    alone = tmp_path / "alone.mp3"
    with sharing_cores(available_cores()):  # one core's share: one encoder process
        with AudioWriter(alone, sample_rate=SR) as w:
            w.write(x)
    assert alone.read_bytes() == path.read_bytes()


def test_seams_that_need_room_are_laid_out_again_and_still_decode(tmp_path, monkeypatch):
    # Loud noise: at about half the candidate seams the later piece's backlog does not fit in
    # the earlier piece's free space. Without a larger last frame, and taking only seams whose
    # later frames were laid out again, the rare path must still make a stream as good as one
    # encoder's.
    x = np.clip(np.random.default_rng(8).standard_normal((int(33 * SR), 2)) * 0.3, -1, 1)
    pcm = _pcm(x)
    pieces = _pieces(pcm)
    assert len(pieces) == 2
    tried = M._try_seam

    def relaid_only(early, late, seam, grow_last):
        found = tried(early, late, seam, grow_last)
        return found if found is not None and found.late_resume > seam - late.piece.first else None

    monkeypatch.setattr(M, "_try_seam", relaid_only)
    relaid = M.join(pieces, grow_last=False)
    monkeypatch.undo()
    assert relaid != M.join(pieces)
    ours, reference = tmp_path / "relaid.mp3", tmp_path / "one.mp3"
    ours.write_bytes(M.info_frame(relaid, samples=len(pcm)) + relaid)
    one = _one_encoder(pcm)
    reference.write_bytes(M.info_frame(one, samples=len(pcm)) + one)
    assert decode_errors(ours) == ""
    a, b = _decode(ours), _decode(reference)
    assert a.shape == b.shape == pcm.shape
    assert _db(a - b) < _db(b - pcm) - 6


def test_a_short_track_is_one_piece_and_one_encoders_stream(tmp_path):
    x = _programme(5.0)
    path = tmp_path / "short.mp3"
    with AudioWriter(path, sample_rate=SR) as w:
        w.write(x)
    pcm = _pcm(x)
    one = _one_encoder(pcm)
    data = path.read_bytes()
    assert data.endswith(one)  # the frames, byte for byte, after the tags and the info frame


@pytest.mark.parametrize("split", [1, 511, 512, 1000, 1024, 1537, 5000])
def test_the_crc_chains_across_pieces(split):
    data = np.random.default_rng(split).integers(0, 256, 6000, dtype=np.uint8).tobytes()
    assert M.crc16(data[split:], start=M.crc16(data[:split])) == M.crc16(data)
