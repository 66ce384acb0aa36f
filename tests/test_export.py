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


@pytest.mark.parametrize(
    "suffix, codec", [(".mp3", "mp3"), (".wav", "pcm_s24le"), (".flac", "flac"), (".ogg", "vorbis")]
)
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


def _awkward_samples(rng, frames, channels):
    """Samples at every scale, with what float-to-PCM conversion gets wrong first: exact and nearly
    full scale, beyond it, infinities, NaN, and ties between two 24-bit steps."""
    scales = rng.choice([1e-9, 1e-3, 0.1, 1.0, 3.0, 1e5], size=(frames, channels))
    x = (rng.standard_normal((frames, channels)) * scales).astype(np.float32)
    edge = [1.0, -1.0, 1.0000001, -1.0000001, 0.99999994, -0.99999994, np.inf, -np.inf, np.nan]
    edge += [k / 2**24 for k in (1, 3, 5, -1, -3)]  # halfway between steps: ties go to even
    n = min(len(edge), x.size)
    x.reshape(-1)[:n] = edge[:n]
    return x


@pytest.mark.parametrize("frames, channels", [(0, 2), (1, 2), (3, 2), (1000, 2), (1001, 1), (7, 1)])
def test_the_24_bit_conversion_is_libsndfiles_byte_for_byte(rng, frames, channels):
    import io

    from meditation.export.encoders import pcm24

    x = _awkward_samples(rng, frames, channels)
    buffer = io.BytesIO()
    sf.write(buffer, x, 44100, subtype="PCM_24", format="WAV")
    wav = buffer.getvalue()
    start = wav.index(b"data") + 8
    assert pcm24(x).tobytes() == wav[start : start + 3 * x.size]


@pytest.mark.parametrize("channels, sizes", [(2, (4096, 1, 333, 10000)), (1, (1001, 3))])
def test_a_24_bit_wav_is_the_file_libsndfile_writes(tmp_path, rng, monkeypatch, channels, sizes):
    """The WAV writer converts the samples itself (on the writer's thread, or on the caller's when the
    writer is behind: many chunks, so both happen), and starts the file's writeback as it goes (here
    every few kilobytes): header, data and padding are still libsndfile's."""
    from meditation.export import encoders

    monkeypatch.setattr(encoders, "_WRITEBACK_BYTES", 5000)
    chunks = [_awkward_samples(rng, n, channels) for n in sizes * 50]
    ours = tmp_path / "ours.wav"
    with AudioWriter(ours, sample_rate=44100, channels=channels) as w:
        for chunk in chunks:
            w.write(chunk)
    theirs = tmp_path / "theirs.wav"
    sf.write(theirs, np.concatenate(chunks), 44100, subtype="PCM_24")
    assert ours.read_bytes() == theirs.read_bytes()


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ExportError, match="unknown output format"):
        AudioWriter(tmp_path / "x.aiff", sample_rate=44100)
    assert list(tmp_path.iterdir()) == []


# --- new formats, gapless timing, chapters, cover and tags -----------------------------------

import re
import subprocess

from ffmpeg import attached_picture, ffmpeg, ffmpeg_chapters, header

from meditation.chapters import Chapter, vorbis_chapter_comments
from meditation.errors import SettingsError
from meditation.export import Metadata, load_cover

LOSSY = [".mp3", ".m4a", ".m4b", ".opus", ".ogg"]
TAGGED = [".mp3", ".m4a", ".m4b", ".opus", ".ogg", ".flac"]


def _cover(path, kind="PNG", size=(64, 48)):
    from PIL import Image

    Image.new("RGB", size, (180, 120, 60)).save(path, kind)
    return path


def _burst(sr=44100, seconds=3.0, onset_s=1.234, extra=17):
    """Silence, then a tone from ``onset_s``: a sharp, known first 'word'."""
    n = int(seconds * sr) + extra
    x = np.zeros((n, 2), np.float32)
    on = int(onset_s * sr)
    t = np.arange(n - on) / sr
    x[on:, 0] = 0.3 * np.sin(2 * np.pi * 440 * t)
    x[on:, 1] = x[on:, 0]
    return x


def decode(path, sr=44100) -> np.ndarray:
    """The whole file as ffmpeg decodes it (honouring encoder delay, padding and edit lists), at ``sr``."""
    raw = subprocess.run(
        [
            ffmpeg(),
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a",
            "-ar",
            str(sr),
            "-ac",
            "2",
            "-f",
            "f32le",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2)


def onset(x: np.ndarray, sr=44100) -> float:
    """Seconds to the first 1 ms window within 30 dB of the loudest one (pre-echo stays below that)."""
    mono = np.abs(x).mean(axis=1)
    hop = sr // 1000
    env = mono[: len(mono) // hop * hop].reshape(-1, hop).max(axis=1)
    return float(np.argmax(env > env.max() * 10 ** (-30 / 20)) * hop / sr)


@pytest.mark.parametrize("suffix", LOSSY)
def test_lossy_files_decode_to_the_exact_length_with_the_onset_in_place(tmp_path, suffix):
    """Encoder delay and padding are signalled (LAME tag, MP4 edit list, Opus pre-skip), so nothing shifts."""
    audio = _burst()
    path = tmp_path / f"t{suffix}"
    with AudioWriter(path, sample_rate=44100) as w:
        for i in range(0, len(audio), 10000):
            w.write(audio[i : i + 10000])
    assert decode_errors(path) == ""
    decoded = decode(path)
    assert abs(len(decoded) - len(audio)) / 44100 < 0.030
    assert abs(onset(decoded) - onset(audio)) < 0.010


def test_mp3_carries_a_lame_tag_with_encoder_delay_and_padding(tmp_path):
    audio = _burst()
    path = tmp_path / "t.mp3"
    with AudioWriter(path, sample_rate=44100) as w:
        w.write(audio)
    data = path.read_bytes()
    xing = data.find(b"Xing")
    assert xing > 0 and data[xing + 120 : xing + 124] == b"LAME"
    frames = int.from_bytes(data[xing + 8 : xing + 12], "big")
    packed = int.from_bytes(data[xing + 141 : xing + 144], "big")
    delay, padding = packed >> 12, packed & 0xFFF
    assert delay == 576
    assert (
        frames * 1152 == delay + len(audio) + padding
    )  # the decoder can trim exactly to the input
    from meditation.export.mp3frames import crc16 as _crc16

    frame_start = xing - 36  # MPEG-1 stereo: 4-byte header + 32 bytes of side information
    assert int.from_bytes(data[xing + 154 : xing + 156], "big") == _crc16(
        data[frame_start : frame_start + 190]
    )


def _crc16_arc_bitwise(data: bytes) -> int:
    """CRC-16/ARC straight from its catalogue entry: poly 0x8005 reflected (0xA001), init 0, no final xor."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_the_lame_tag_crc_is_crc16_arc_on_its_catalogue_check_value(monkeypatch):
    # The tag's checksums are CRC-16/ARC (LAME's "CRC-16", as in its VbrTag.c). The catalogue's
    # check value (Greg Cook, "Catalogue of parametrised CRC algorithms"): CRC-16/ARC("123456789")
    # = 0xBB3D. A test that compares the tag with the CRC under test cannot catch a wrong CRC.
    from meditation.export.mp3frames import crc16 as _crc16

    check = b"123456789"
    assert _crc16_arc_bitwise(check) == 0xBB3D
    assert _crc16(check) == 0xBB3D  # byte by byte (short input)
    # Long inputs are checksummed in blocks and chained; with tiny blocks the check value
    # goes through that path too, with a whole number of blocks and with a remainder.
    for block in (1, 2, 3, 4):
        monkeypatch.setattr("meditation.export.mp3frames._CRC_BLOCK", block)
        assert _crc16(check) == 0xBB3D, block
    monkeypatch.undo()
    # And at the real block size, on lengths around its multiples, against the catalogue definition.
    from meditation.export.mp3frames import _CRC_BLOCK as B

    data = np.random.default_rng(17).integers(0, 256, 3 * B + 100, dtype=np.uint8).tobytes()
    for n in (2 * B - 1, 2 * B, 2 * B + 1, 3 * B + 77, len(data)):
        assert _crc16(data[:n]) == _crc16_arc_bitwise(data[:n]), n


def test_opus_is_48_khz_and_keeps_a_tone_where_it_was(tmp_path):
    """Opus runs at 48 kHz: the 44.1 kHz mix is resampled (soxr), not sped up."""
    sr = 44100
    t = np.arange(2 * sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t))[:, None].repeat(2, axis=1).astype(np.float32)
    path = tmp_path / "t.opus"
    with AudioWriter(path, sample_rate=sr) as w:
        w.write(tone)
    info = probe(path)
    assert info["codec"] == "opus" and info["sample_rate"] == 48000
    decoded = decode(path, sr=48000)[:, 0]
    spectrum = np.abs(np.fft.rfft(decoded * np.hanning(len(decoded))))
    assert np.fft.rfftfreq(len(decoded), 1 / 48000)[np.argmax(spectrum)] == pytest.approx(
        1000, abs=2
    )


# Titles of falling length: file order must still be time order (players list chapters as stored).
CHAPTERS = (
    Chapter("Arriving at the shore", 0.0, 2.0),
    Chapter("The stream", 2.0, 4.5),
    Chapter("Ünïcode", 4.5, 6.0),
)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", TAGGED)
def test_chapters_cover_and_tags_read_back(tmp_path, suffix):
    cover = load_cover(_cover(tmp_path / "art.png"))
    meta = Metadata(
        title="Evening",
        artist="Tester",
        year=2026,
        comment="voice pyttsx3, seed 3",
        chapters=CHAPTERS,
        cover=cover,
    )
    path = tmp_path / f"t{suffix}"
    with AudioWriter(path, sample_rate=44100, metadata=meta) as w:
        w.write(_tone(6.0))
    assert decode_errors(path) == ""
    chapters = ffmpeg_chapters(path)
    assert [t for _, t in chapters] == [c.title for c in CHAPTERS]
    assert [s for s, _ in chapters] == pytest.approx([c.start_s for c in CHAPTERS], abs=0.001)
    assert attached_picture(path) == "png 64x48"
    import mutagen

    tags = mutagen.File(path)
    text = " ".join(
        str(v) for v in (tags.tags.values() if hasattr(tags.tags, "values") else tags.tags)
    )
    for expected in ("Evening", "Tester", "Meditation", "2026", "voice pyttsx3, seed 3"):
        assert expected in text or expected in str(tags.tags)
    if suffix in (".opus", ".ogg", ".flac"):
        assert tags.tags["CHAPTER002NAME"] == ["The stream"] and tags.tags["CHAPTER002"] == [
            "00:00:02.000"
        ]


def test_mp3_chapters_are_id3_chap_frames_under_a_ctoc(tmp_path):
    from mutagen.id3 import ID3

    path = tmp_path / "t.mp3"
    with AudioWriter(path, sample_rate=44100, metadata=Metadata(title="T", chapters=CHAPTERS)) as w:
        w.write(_tone(6.0))
    tags = ID3(path)
    toc = tags.getall("CTOC")[0]
    chaps = {c.element_id: c for c in tags.getall("CHAP")}
    assert [
        (chaps[i].start_time, chaps[i].end_time, chaps[i].sub_frames["TIT2"].text[0])
        for i in toc.child_element_ids
    ] == [
        (0, 2000, "Arriving at the shore"),
        (2000, 4500, "The stream"),
        (4500, 6000, "Ünïcode"),
    ]


def test_m4b_is_an_audiobook_with_a_quicktime_chapter_track(tmp_path):
    path = tmp_path / "t.m4b"
    with AudioWriter(path, sample_rate=44100, metadata=Metadata(title="T", chapters=CHAPTERS)) as w:
        w.write(_tone(6.0))
    text = probe(path)["text"]
    assert "major_brand     : M4B" in text
    assert "Audio: aac (LC)" in text
    assert re.search(r"Data: bin_data \(text", text)  # the chapter text track Apple players read
    from mutagen.mp4 import MP4

    assert [c.title for c in MP4(path).chapters] == [
        c.title for c in CHAPTERS
    ]  # and the Nero chpl box


def test_wav_stays_plain(tmp_path):
    path = tmp_path / "t.wav"
    cover = load_cover(_cover(tmp_path / "art.png"))
    with AudioWriter(
        path, sample_rate=44100, metadata=Metadata(title="T", chapters=CHAPTERS, cover=cover)
    ) as w:
        w.write(_tone(1.0))
    assert ffmpeg_chapters(path) == [] and attached_picture(path) is None
    decoded, _ = sf.read(path, dtype="float32")
    assert decoded.shape == (44100, 2)


def test_a_jpeg_cover_is_embedded_as_jpeg(tmp_path):
    cover = load_cover(_cover(tmp_path / "art.jpg", "JPEG", (40, 30)))
    assert cover.mime == "image/jpeg"
    path = tmp_path / "t.flac"
    with AudioWriter(path, sample_rate=44100, metadata=Metadata(title="T", cover=cover)) as w:
        w.write(_tone(1.0))
    assert attached_picture(path) == "mjpeg 40x30"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "does not exist"),
        (lambda p: (p.write_text("hello"), p)[1], "is not a PNG or JPEG"),
        (lambda p: (p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), p)[1], "damaged PNG"),
        (lambda p: (p.mkdir(), p)[1], "is a folder"),
    ],
    ids=["missing", "not an image", "truncated png", "folder"],
)
def test_a_bad_cover_is_refused_in_one_line(tmp_path, make, message):
    path = make(tmp_path / "art.png")
    with pytest.raises(SettingsError, match=message) as error:
        load_cover(path)
    assert "\n" not in str(error.value)


def test_a_truncated_jpeg_is_refused(tmp_path):
    good = _cover(tmp_path / "good.jpg", "JPEG", (200, 200))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])
    with pytest.raises(SettingsError, match="damaged JPEG"):
        load_cover(bad)


def test_vorbis_chapter_comments_follow_the_ogg_convention():
    comments = vorbis_chapter_comments(
        (Chapter("One", 0.0, 61.5), Chapter("Two", 3723.456, 4000.0))
    )
    assert comments == {
        "CHAPTER001": "00:00:00.000",
        "CHAPTER001NAME": "One",
        "CHAPTER002": "01:02:03.456",
        "CHAPTER002NAME": "Two",
    }


@pytest.fixture(scope="module")
def short_renders(tmp_path_factory):
    """One short script rendered to WAV and to each lossy format, narration only so the first word is sharp."""
    from meditation.cli import main

    folder = tmp_path_factory.mktemp("gapless")
    script = folder / "s.md"
    script.write_text("# One\n\nBreathe in slowly.\n\nAnd out.\n", encoding="utf-8")
    renders = {}
    for suffix in (".wav", ".mp3", ".m4a", ".opus"):
        out, timings = folder / f"s{suffix}", folder / f"s{suffix}.json"
        args = [
            "render",
            str(script),
            "--voice",
            "pyttsx3",
            "--soundscape",
            "none",
            "--lead-in",
            "1.5",
            "--tail",
            "1",
        ]
        assert main([*args, "-o", str(out), "--timings", str(timings), "--progress", "off"]) == 0
        import json

        renders[suffix] = (out, json.loads(timings.read_text(encoding="utf-8")))
    return renders


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".mp3", ".m4a", ".opus"])
def test_a_rendered_lossy_file_has_the_timelines_length_and_the_wavs_first_word(
    short_renders, suffix
):
    wav, _ = short_renders[".wav"]
    path, timings = short_renders[suffix]
    decoded = decode(path)
    assert abs(len(decoded) / 44100 - timings["duration"]) < 0.030
    assert abs(onset(decoded) - onset(decode(wav))) < 0.010
    assert onset(decoded) == pytest.approx(
        timings["segments"][0]["start"], abs=0.040
    )  # the word is where the timings say


@pytest.mark.parametrize("suffix", [".m4a", ".opus", ".mp3"])
def test_an_interrupted_encode_leaves_no_file_and_no_thread(tmp_path, suffix):
    import threading

    path = tmp_path / f"x{suffix}"
    with pytest.raises(RuntimeError):
        with AudioWriter(path, sample_rate=44100) as w:
            for _ in range(20):
                w.write(_tone(0.5))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == "meditation-encoder"]


@pytest.mark.parametrize("suffix", [".ogg", ".opus", ".flac"])
@pytest.mark.parametrize("with_cover", [False, True])
def test_ffprobe_reads_vorbis_comments_without_leftover_bytes(tmp_path, suffix, with_cover):
    # mutagen pads the comment packet with zero bytes by default; ffmpeg then
    # reports "N bytes of comment header remain" on every Ogg and Opus file.
    cover = load_cover(_cover(tmp_path / "art.png")) if with_cover else None
    meta = Metadata(title="Evening", comment="soundscape dream, seed 3", cover=cover)
    path = tmp_path / f"t{suffix}"
    with AudioWriter(path, sample_rate=48000, metadata=meta) as w:
        w.write(_tone(2.0, 48000))
    text = header(path)
    assert "Evening" in text
    assert "remain" not in text, text


# --- issue 18, item 19: an MP3 quality option ------------------------------------------


def test_mp3_quality_trades_size_for_fidelity_at_the_same_loudness(tmp_path):
    from meditation.cli import main  # noqa: PLC0415 - only this test runs the command

    sizes, seconds = {}, {}
    for quality in (0, 2, 9):
        out = tmp_path / f"q{quality}.mp3"
        argv = ["ambient", "--duration", "20s", "--soundscape", "stream", "--progress", "off"]
        assert main([*argv, "--mp3-quality", str(quality), "-o", str(out)]) == 0
        sizes[quality] = out.stat().st_size
        audio, rate = sf.read(out)
        seconds[quality] = len(audio) / rate
    kbps = {q: sizes[q] * 8 / 20 / 1000 for q in sizes}
    assert kbps[0] > kbps[2] > kbps[9] and kbps[9] < 0.5 * kbps[2], kbps
    assert max(seconds.values()) - min(seconds.values()) < 0.001  # gapless at every quality
    assert (
        main(["ambient", "--duration", "2s", "--mp3-quality", "10", "-o", str(tmp_path / "x.mp3")])
        == 2
    )


def test_an_mp3_reads_back_as_ffmpeg_decodes_it_without_clicks(tmp_path, capfd):
    # libsndfile's MP3 decoder, read in blocks through soundfile (which seeks to learn the
    # position before each read), lost the bit reservoir at block starts: clicks of up to 0.9
    # full scale in a bed or in the measure of a written MP3, and libmpg123 errors on stderr.
    import subprocess

    from ffmpeg import ffmpeg

    from meditation.decode import read_audio

    sr, rng = 16000, np.random.default_rng(4)
    level = np.zeros(15 * sr, np.float32)
    at = 0
    while at < len(level):  # bursts and gaps, like speech: the reservoir fills in the gaps
        length, gap = (int(rng.uniform(*span) * sr) for span in ((0.05, 0.6), (0.05, 0.5)))
        level[at : at + length] = rng.uniform(0.1, 0.5)
        at += length + gap
    noise = (rng.standard_normal(len(level)) * level).astype(np.float32)
    path = tmp_path / "bursts.mp3"
    with AudioWriter(path, sample_rate=sr) as w:
        w.write(np.stack([noise, noise], axis=1))
    raw = subprocess.run(
        [ffmpeg(), "-v", "error", "-i", str(path), "-f", "f32le", "-acodec", "pcm_f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    reference = np.frombuffer(raw, np.float32).reshape(-1, 2)
    decoded, rate = read_audio(path)
    assert rate == sr and decoded.shape == reference.shape == (len(noise), 2)
    assert np.abs(decoded - reference).max() < 1e-4
    assert "libmpg123" not in capfd.readouterr().err
