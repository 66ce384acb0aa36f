"""The MP3 encoder process: 16-bit PCM on stdin, a VBR MP3 (``-V2``) written to a path.

Run as ``python -m meditation._lame_worker PATH SAMPLE_RATE CHANNELS PARENT_PID PDEATHSIG``
by ``meditation.export``; it imports nothing but lameenc, so it starts fast.

It lives and dies with the process that feeds it: when that parent dies
(even by ``kill -9``) the encoder deletes its file and exits, and end of
input from a dead parent is not mistaken for the end of the track, so a
killed render never leaves a short but playable file behind. Ctrl-C and a
SIGTERM sent to the whole process group are the parent's to handle: it stops
the encoder itself.
"""

from __future__ import annotations

import os
import signal
import sys

_READ = 1 << 16


def main(argv: list[str]) -> int:
    from meditation._lifecycle import die_with_parent, ignore_interrupts, parent_is_alive

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

    import lameenc

    frame = 2 * channels
    lame = lameenc.Encoder()
    lame.set_in_sample_rate(sample_rate)
    lame.set_channels(channels)
    lame.set_vbr(4)  # vbr_mtrh, LAME's default VBR mode
    lame.set_vbr_quality(2)  # -V2
    lame.set_quality(5)
    source = sys.stdin.buffer
    leftover = b""
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
                out.write(lame.encode(data[:whole]))
        out.write(lame.flush())
    add_xing_header(path)
    return 0


# MPEG audio Layer III tables: kbps by bitrate index, Hz by sample-rate index.
_BITRATES = {1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320), 2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits: MPEG1, 2, 2.5


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


def add_xing_header(path: str) -> None:
    """Put a Xing frame (frame count, byte count, seek table) in front of a VBR stream.

    Without it players guess a VBR file's length from its first frame's
    bitrate (ffmpeg read the 5-minute dream as 7) and seek to wrong places.
    lameenc does not write one, so it is built here from the frames.
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
    header, (_, mpeg1, mono) = first
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    needed = 4 + side_info + 120
    table = _BITRATES[1 if mpeg1 else 2]
    for index in range(1, 15):
        xing = (header & ~(0xF << 12) & ~(1 << 9)) | (index << 12) | (1 << 16)  # no CRC, no padding
        size = _frame_info(xing)[0]
        if size >= needed:
            break
    total = size + len(data)
    toc = bytes(
        min(255, int(256 * (size + offsets[min(len(offsets) - 1, int(i * len(offsets) / 100))]) / total)) for i in range(100)
    )
    body = b"Xing" + (0xF).to_bytes(4, "big") + len(offsets).to_bytes(4, "big") + total.to_bytes(4, "big") + toc + (0).to_bytes(4, "big")
    frame = xing.to_bytes(4, "big") + bytes(side_info) + body
    frame += bytes(size - len(frame))
    del table
    with open(path, "wb") as out:
        out.write(frame)
        out.write(data)



if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
