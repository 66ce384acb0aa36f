"""An MP3 encoder process: pieces of 16-bit PCM on stdin, each piece's bare MP3 frames on stdout.

Run as ``python -m meditation._lame_worker SAMPLE_RATE CHANNELS PARENT_PID PDEATHSIG VBR_QUALITY [PATH]``
by ``meditation.export``; it imports only lameenc and the standard library (through
``meditation._lifecycle``), so it starts fast.

lameenc (measured about 3× faster than FFmpeg's libmp3lame through PyAV,
with the same LAME settings) holds the GIL while it encodes, so a render
runs one of these per core it may use and hands each its share of the
track's pieces; the parent joins the pieces and writes the file
(``meditation.export.mp3frames``). On stdin, a piece is any number of
``D`` messages (a 4-byte little-endian length, then that many bytes of
interleaved samples) and one ``E``; for each ``E`` the encoder writes an
8-byte little-endian length and the piece's frames, from a fresh encoder.
``Q`` ends the work; end of input without it means the parent is gone.

It lives and dies with the process that feeds it: when that parent dies
(even by ``kill -9``) the encoder deletes ``PATH`` (the parent's temporary
file, which only the first encoder is given) and exits, so a killed render
leaves no file behind. The parent's death shows first as end of input or a
broken pipe: the kernel closes a dying process's files before it hands its
children to another parent, so ``getppid`` still names the dead parent for
a moment, and the kernel's signal arrives in that moment too. Ctrl-C and a SIGTERM sent to the whole process group
are the parent's to handle: it stops the encoder itself.
"""

from __future__ import annotations

import os
import signal
import sys

import lameenc

from meditation._lifecycle import die_with_parent, ignore_interrupts, parent_is_alive


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
    sample_rate, channels, parent = int(argv[0]), int(argv[1]), int(argv[2])
    pdeathsig, vbr_quality = argv[3] == "1", int(argv[4])
    path = argv[5] if len(argv) > 5 else None

    def orphaned(signum=None, frame=None) -> None:
        if signum is not None and parent_is_alive(parent):
            return  # a group-wide SIGTERM: the living parent will stop us
        if path is not None:
            try:
                os.unlink(path)
            except OSError:
                pass
        os._exit(143)

    ignore_interrupts()
    signal.signal(signal.SIGTERM, orphaned)
    die_with_parent(parent, pdeathsig=pdeathsig)

    try:
        if _serve(sys.stdin.buffer, sys.stdout.buffer, sample_rate, channels, vbr_quality):
            return 0
    except ConnectionError:
        pass  # a broken pipe: the parent is gone (or stopping us)
    orphaned()
    return 143


def _serve(source, sink, sample_rate, channels, vbr_quality) -> bool:
    """Encode pieces until told to stop (True) or until input ends without that (False)."""
    lame = None
    frames: list[bytes] = []
    while True:
        kind = source.read(1)
        if kind == b"D":
            size = int.from_bytes(_exactly(source, 4), "little")
            if lame is None:
                lame = new_encoder(sample_rate, channels, vbr_quality)
            frames.append(lame.encode(_exactly(source, size)))
        elif kind == b"E":
            if lame is None:
                lame = new_encoder(sample_rate, channels, vbr_quality)
            frames.append(lame.flush())
            piece = b"".join(frames)
            sink.write(len(piece).to_bytes(8, "little"))
            sink.write(piece)
            sink.flush()
            lame, frames = None, []
        elif kind == b"Q":
            return True
        elif not kind:
            return False
        else:
            raise SystemExit(f"unknown message {kind!r}")


def _exactly(source, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:  # input ended mid-message: the parent is gone
        raise BrokenPipeError
    return data


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
