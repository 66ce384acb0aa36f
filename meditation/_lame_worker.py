"""The MP3 encoder process: 16-bit PCM on stdin, a gapless VBR MP3 (``-V2``) written to a path.

Run as ``python -m meditation._lame_worker PATH SAMPLE_RATE CHANNELS PARENT_PID PDEATHSIG``
by ``meditation.export``; it imports only lameenc and the standard library (through
``meditation._lifecycle``), so it starts fast.

lameenc (measured about 3× faster than FFmpeg's libmp3lame through PyAV,
with the same LAME settings) writes bare frames; the Xing/LAME info frame
that makes the file seekable and gapless is built here.

It lives and dies with the process that feeds it: when that parent dies
(even by ``kill -9``) the encoder deletes its file and exits, and end of
input from a dead parent is not mistaken for the end of the track, so a
killed render never leaves a short but playable file behind. Ctrl-C and a
SIGTERM sent to the whole process group are the parent's to handle: it stops
the encoder itself.
"""

from __future__ import annotations

import functools
import os
import signal
import sys

import lameenc

from meditation._lifecycle import die_with_parent, ignore_interrupts, parent_is_alive

_READ = 1 << 16


def new_encoder(sample_rate: int, channels: int, vbr_quality: int = 2):
    """A lameenc encoder at the renderer's settings (VBR ``-V{vbr_quality}``); the benchmark's encode floor uses it too."""
    lame = lameenc.Encoder()
    lame.set_in_sample_rate(sample_rate)
    # Never resampled (LAME would at -V7 to -V9): the gapless delay and padding assume the input's rate.
    lame.set_out_sample_rate(sample_rate)
    lame.set_channels(channels)
    lame.set_vbr(4)  # vbr_mtrh, LAME's default VBR mode
    lame.set_vbr_quality(vbr_quality)  # -V2 unless --mp3-quality says otherwise
    lame.set_quality(5)
    return lame


def main(argv: list[str]) -> int:
    path, sample_rate, channels = argv[0], int(argv[1]), int(argv[2])
    parent = int(argv[3]) if len(argv) > 3 else os.getppid()

    def orphaned(signum=None, frame=None) -> None:
        if signum is not None and parent_is_alive(parent):
            return  # a group-wide SIGTERM: the living parent will stop us
        try:
            os.unlink(path)
        except OSError:
            pass
        os._exit(143)

    ignore_interrupts()
    signal.signal(signal.SIGTERM, orphaned)
    die_with_parent(parent, pdeathsig=len(argv) <= 4 or argv[4] == "1")

    frame = 2 * channels
    vbr_quality = int(argv[5]) if len(argv) > 5 else 2
    lame = new_encoder(sample_rate, channels, vbr_quality)
    source = sys.stdin.buffer
    leftover = b""
    samples = 0
    with open(path, "wb") as out:
        while True:
            data = source.read(_READ)
            if not data:
                if not parent_is_alive(parent):
                    orphaned()
                break
            data = leftover + data
            whole = len(data) - len(data) % frame  # lameenc wants whole sample frames
            leftover = data[whole:]
            if whole:
                samples += whole // frame
                out.write(lame.encode(data[:whole]))
        out.write(lame.flush())
    add_xing_header(path, samples=samples, vbr_quality=vbr_quality)
    return 0


# MPEG audio Layer III tables: kbps by bitrate index, Hz by sample-rate index.
_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {
    3: (44100, 48000, 32000),
    2: (22050, 24000, 16000),
    0: (11025, 12000, 8000),
}  # by version bits: MPEG1, 2, 2.5


def _frame_info(header: int):
    """(frame bytes, is MPEG-1, mono) of a Layer III frame header, or None if it is not one."""
    if header >> 21 != 0x7FF:
        return None
    version, layer = (header >> 19) & 3, (header >> 17) & 3
    bitrate_index, rate_index = (header >> 12) & 15, (header >> 10) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    kbps = _BITRATES[1 if mpeg1 else 2][bitrate_index]
    rate = _RATES[version][rate_index]
    size = (144000 if mpeg1 else 72000) * kbps // rate + ((header >> 9) & 1)
    return size, mpeg1, ((header >> 6) & 3) == 3


# LAME's fixed encoder delay at the start of the stream (``lame_get_encoder_delay``).
ENCODER_DELAY = 576


def add_xing_header(path: str, *, samples: int | None = None, vbr_quality: int = 2) -> None:
    """Put a Xing frame with a LAME tag (frame count, byte count, seek table, delay, padding) in front of a VBR stream.

    Without it players guess a VBR file's length from its first frame's
    bitrate (ffmpeg read the 5-minute dream as 7) and seek to wrong places;
    the LAME tag's encoder delay and padding let decoders drop the samples
    LAME adds at both ends, so the decoded track is exactly as long as the
    input and every word stays where the timeline put it. ``samples`` is
    the number of input sample frames (padding is left 0 if unknown).
    """
    data = open(path, "rb").read()
    offsets = []
    pos = 0
    first = None
    while pos + 4 <= len(data):
        header = int.from_bytes(data[pos : pos + 4], "big")
        info = _frame_info(header)
        if info is None:
            pos += 1  # not a frame boundary: resynchronize
            continue
        if first is None:
            first = (header, info)
        offsets.append(pos)
        pos += info[0]
    if first is None:
        return
    audio = data[offsets[0] :]
    header, (_, mpeg1, mono) = first
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    xing_at = 4 + side_info
    needed = xing_at + 120 + 36  # Xing fields, then the 36-byte LAME tag
    for index in range(1, 15):
        xing = (header & ~(0xF << 12) & ~(1 << 9)) | (index << 12) | (1 << 16)  # no CRC, no padding
        size = _frame_info(xing)[0]
        if size >= needed:
            break
    total = size + len(audio)
    toc = bytes(
        min(
            255,
            int(
                256
                * (size + offsets[min(len(offsets) - 1, int(i * len(offsets) / 100))] - offsets[0])
                / total
            ),
        )
        for i in range(100)
    )
    frame_samples = 1152 if mpeg1 else 576
    padding = (
        0 if samples is None else max(0, len(offsets) * frame_samples - ENCODER_DELAY - samples)
    )
    quality = (
        100 - 10 * vbr_quality - 5
    )  # LAME's rule: 100 - 10 × VBR quality - algorithm quality (5)
    body = (
        b"Xing"
        + (0xF).to_bytes(4, "big")
        + len(offsets).to_bytes(4, "big")
        + total.to_bytes(4, "big")
        + toc
        + quality.to_bytes(4, "big")
    )
    lame = (
        b"LAME3.100"
        + bytes([(0 << 4) | 4])  # tag revision 0, VBR method 4 (mtrh, -V)
        + bytes(1)  # lowpass: not recorded
        + bytes(4)  # peak amplitude: not recorded
        + bytes(4)  # ReplayGain: none
        + bytes(1)  # encoding flags, ATH type
        + bytes(1)  # minimal bitrate: not recorded
        + ((min(ENCODER_DELAY, 4095) << 12) | min(padding, 4095)).to_bytes(3, "big")
        + bytes(1)  # misc (noise shaping, stereo mode, source rate)
        + bytes(1)  # MP3 gain
        + bytes(2)  # preset, surround
        + total.to_bytes(4, "big")  # music length: the info frame and the audio frames
        + _crc16(audio).to_bytes(2, "big")  # CRC of the audio frames
    )
    frame = xing.to_bytes(4, "big") + bytes(side_info) + body + lame
    frame += _crc16(frame).to_bytes(2, "big")  # CRC of the 190 bytes before it
    frame += bytes(size - len(frame))
    with open(path, "wb") as out:
        out.write(frame)
        out.write(audio)


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC16 = _crc16_table()


def _crc16(data: bytes) -> int:
    """CRC-16 (polynomial 0x8005, reflected, initial 0: LAME's tag checksums)."""
    if len(data) < 2 * _CRC_BLOCK:
        return _crc16_bytes(data)
    import numpy as np  # noqa: PLC0415 - only for long files; the encoder process starts without it

    # The CRC is linear with a zero start, so blocks are checksummed side by
    # side (one numpy step per byte position) and then chained: a whole file
    # costs milliseconds instead of a Python step per byte. It is the last
    # thing the encoder does before the file can be committed, so it is kept
    # short: small blocks (few numpy steps), chained a byte of state at a time.
    table = np.asarray(_CRC16, dtype=np.uint16)
    whole = len(data) // _CRC_BLOCK
    blocks = np.frombuffer(data, dtype=np.uint8, count=whole * _CRC_BLOCK).reshape(
        whole, _CRC_BLOCK
    )
    crcs = np.zeros(whole, dtype=np.uint16)
    for j in range(_CRC_BLOCK):
        crcs = (crcs >> 8) ^ table[(crcs ^ blocks[:, j]) & 0xFF]
    low, high = _carry_tables(_CRC_BLOCK)
    crc = 0
    for block_crc in crcs.tolist():
        crc = low[crc & 0xFF] ^ high[crc >> 8] ^ block_crc
    return _crc16_bytes(data[whole * _CRC_BLOCK :], start=crc)


_CRC_BLOCK = 512


def _crc16_bytes(data: bytes, start: int = 0) -> int:
    crc = start
    for byte in data:
        crc = (crc >> 8) ^ _CRC16[(crc ^ byte) & 0xFF]
    return crc


@functools.cache
def _carry_tables(block: int) -> tuple[list[int], list[int]]:
    """A CRC state carried over ``block`` zero bytes, by its low and its high byte.

    The carry is linear in the state: each bit's carry is computed once (16
    blocks' worth of steps), and each table entry is the XOR of its bits' carries.
    """
    zeros = bytes(block)
    bit = [_crc16_bytes(zeros, start=1 << b) for b in range(16)]

    def table(first: int) -> list[int]:
        out = []
        for state in range(256):
            carried = 0
            for b in range(8):
                if state >> b & 1:
                    carried ^= bit[first + b]
            out.append(carried)
        return out

    return table(0), table(8)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
