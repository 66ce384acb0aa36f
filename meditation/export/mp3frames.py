"""MP3 frames: a long track encoded in pieces side by side, joined into one stream, and its info frame.

LAME encodes one frame after another on one core, and it keeps a bit
reservoir: a frame's bits may begin up to 511 bytes back, in the free space
of the frames before it, and once a stream has started the reservoir never
empties again. So a track cannot be cut into pieces for several encoders
and the pieces simply put end to end. It can be joined at a seam, though:

- Pieces are fixed runs of frames, decided by the track alone (never by the
  number of cores), so the same input gives the same file on every machine.
  Each piece's encoder starts ``WARMUP`` frames early (its filter bank and
  psychoacoustic state settle; LAME's own first two frames differ) on a
  whole frame boundary, so its frames line up with the track's, and runs
  ``CANDIDATES + SETTLE`` frames past the piece's end.
- At each seam one of ``CANDIDATES`` frame boundaries is chosen where the
  two encoders' window shapes meet (a long block may not face a short one),
  and the later piece's reservoir backlog (the bytes its first kept frame
  needs before it) is moved into the free space at the end of the earlier
  piece's last kept frame. Where that space is short, the last frame is
  given a higher bitrate (VBR frames may be any size), and if even that is
  not enough the later frames are laid out again, each as early as the
  reservoir allows and as large as its bits need, until the later piece's
  own layout fits. The seam that costs the fewest added bytes wins.

Measured on the dream, loud white noise, a sine, a square wave and clicks:
every one of the 16 candidates fitted at every seam tried (about half of them
without a larger frame), and from the third frame on the later encoder's
frames carried the same bits as one encoder's (LAME's quantization does not
depend on the reservoir), so most seams decode sample for sample as one
encoder's stream does.

The info frame (Xing header and LAME tag) that makes a VBR stream seekable
and gapless is built here as well, over the joined frames.
"""

from __future__ import annotations

import functools
from array import array
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CANDIDATES",
    "FRAME_SAMPLES",
    "PIECE_FRAMES",
    "SETTLE",
    "WARMUP",
    "crc16",
    "Joiner",
    "StreamInfo",
    "info_frame",
    "join",
    "piece_span",
    "splits",
]

FRAME_SAMPLES = 1152  # an MPEG-1 Layer III frame; only MPEG-1 rates are split
PIECE_FRAMES = 1150  # about 26 s at 44.1 kHz: a long track keeps every core busy to its end
WARMUP = 8  # frames each later piece's encoder starts early (two would do for the bits; the rest for the reservoir)
CANDIDATES = 16  # frame boundaries tried at each seam
SETTLE = 4  # frames of input past the last candidate (LAME looks ahead about two)
_RELAYOUT_LIMIT = 64  # frames laid out again at one seam before the candidate is given up

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

# LAME's fixed encoder delay at the start of the stream (``lame_get_encoder_delay``).
ENCODER_DELAY = 576


def splits(sample_rate: int) -> bool:
    """Whether a track at ``sample_rate`` is encoded in pieces (MPEG-1 rates; LAME keeps the input's rate)."""
    return sample_rate in _RATES[3]


def piece_span(piece: int) -> tuple[int, int]:
    """The input of ``piece``, in frames of samples: (first, end).

    A track of no more than ``end`` frames' samples ends in this piece, which then runs to its end.
    """
    first = max(0, piece * PIECE_FRAMES - WARMUP)
    return first, (piece + 1) * PIECE_FRAMES + CANDIDATES + SETTLE


def frame_info(header: int) -> tuple[int, bool, bool] | None:
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


def frame_offsets(data: bytes | memoryview) -> list[int]:
    """Where each frame of a bare Layer III stream starts."""
    offsets = []
    pos = 0
    end = len(data)
    while pos + 4 <= end:
        info = frame_info(int.from_bytes(data[pos : pos + 4], "big"))
        if info is None:
            pos += 1  # not a frame boundary: resynchronize
            continue
        offsets.append(pos)
        pos += info[0]
    return offsets


@dataclass
class _Frame:
    """One MPEG-1 frame as the joiner sees it; positions are in the stream's main-data space."""

    header: int
    side: bytes  # side information (its first 9 bits: main_data_begin)
    slot: bytes  # the bytes after header and side information
    start: int  # where the slot begins in main-data space
    back: int  # main_data_begin: how far before ``start`` the frame's bits begin
    length: int  # bytes the frame's bits occupy (part2_3 lengths, rounded up)
    left_short: tuple[bool, ...]  # per channel: the first granule's window opens short
    right_short: tuple[bool, ...]  # per channel: the last granule's window closes short

    @property
    def begins(self) -> int:
        return self.start - self.back

    @property
    def ends(self) -> int:
        return self.start - self.back + self.length


def _bits(value: int, width: int, at: int, count: int) -> int:
    return (value >> (width - at - count)) & ((1 << count) - 1)


class _Piece:
    """An encoded piece: its bytes and where each of its frames starts."""

    def __init__(self, first_frame: int, data: bytes):
        self.first = first_frame  # the track's frame index of this piece's frame 0
        self.data = data
        self.offsets = frame_offsets(data)

    def __len__(self) -> int:
        return len(self.offsets)

    def end_of(self, index: int) -> int:
        """The byte after frame ``index`` (local)."""
        if index + 1 < len(self.offsets):
            return self.offsets[index + 1]
        return self.offsets[index] + frame_info(self.header(index))[0]  # type: ignore[index]

    def header(self, index: int) -> int:
        pos = self.offsets[index]
        return int.from_bytes(self.data[pos : pos + 4], "big")

    def slot_at(self, index: int) -> int:
        """Where frame ``index``'s slot (the bytes after header and side information) begins."""
        return self.offsets[index] + 4 + _side_size(self.header(index))


class _Window:
    """A run of a piece's frames from ``origin`` on, with their main-data positions (``origin``'s slot at 0)."""

    def __init__(self, piece: _Piece, origin: int):
        self.piece = piece
        self.origin = origin
        self._starts = [0]

    def start(self, index: int) -> int:
        """Where frame ``index``'s slot begins in main-data space."""
        piece = self.piece
        while len(self._starts) <= index - self.origin:
            i = self.origin + len(self._starts) - 1
            self._starts.append(self._starts[-1] + piece.end_of(i) - piece.slot_at(i))
        return self._starts[index - self.origin]

    def frame(self, index: int) -> _Frame:
        piece = self.piece
        pos = piece.offsets[index]
        header = piece.header(index)
        channels = 1 if ((header >> 6) & 3) == 3 else 2
        side_size = _side_size(header)
        side = bytes(piece.data[pos + 4 : pos + 4 + side_size])
        value = int.from_bytes(side, "big")
        width = side_size * 8
        at = 9 + (5 if channels == 1 else 3) + 4 * channels
        bits = 0
        types = []
        for _ in range(2 * channels):  # granule 0's channels, then granule 1's
            bits += _bits(value, width, at, 12)
            switched = _bits(value, width, at + 33, 1)
            types.append(_bits(value, width, at + 34, 2) if switched else 0)
            at += 59
        return _Frame(
            header=header,
            side=side,
            slot=bytes(piece.data[pos + 4 + side_size : piece.end_of(index)]),
            start=self.start(index),
            back=_bits(value, width, 0, 9),
            length=(bits + 7) // 8,
            left_short=tuple(t in (2, 3) for t in types[:channels]),  # short, or stop
            right_short=tuple(t in (1, 2) for t in types[channels:]),  # start, or short
        )

    def space(self, begin: int, end: int) -> bytes:
        """Main-data bytes [begin, end), by main-data position."""
        piece = self.piece
        out = bytearray()
        index = self.origin
        while self.start(index + 1) <= begin:
            index += 1
        while len(out) < end - begin and index < len(piece):
            f_start = self.start(index)
            slot_at = piece.slot_at(index)
            lo = max(begin, f_start)
            hi = min(end, f_start + piece.end_of(index) - slot_at)
            if hi > lo:
                out += piece.data[slot_at + lo - f_start : slot_at + hi - f_start]
            index += 1
        if len(out) != end - begin:
            raise ValueError("an MP3 frame's bits run outside its piece")
        return bytes(out)


def _side_size(header: int) -> int:
    return 17 if ((header >> 6) & 3) == 3 else 32


def _with_bitrate(header: int, index: int) -> int:
    return (header & ~(0xF << 12)) | (index << 12)


def _with_back(side: bytes, back: int) -> bytes:
    return bytes([back >> 1, (side[1] & 0x7F) | ((back & 1) << 7)]) + side[2:]


def _slot_size(header: int) -> int:
    return frame_info(header)[0] - 4 - _side_size(header)  # type: ignore[index]


@dataclass
class _Seam:
    cost: int  # bytes added by larger frames
    frames: list[bytes]  # the rewritten frames, in order
    early_stop: int  # local index in the earlier piece where the rewritten frames begin
    late_resume: int  # local index in the later piece of its first untouched frame


def _try_seam(early: _Window, late: _Window, seam: int, grow_last: bool) -> _Seam | None:
    """Join ``early``'s frames before track frame ``seam`` to ``late``'s from it on, or None."""
    index = seam - 1 - early.piece.first
    last = early.frame(index)
    local = seam - late.piece.first
    first = late.frame(local)
    if last.right_short != first.left_short:
        return None  # the windows would not overlap-add back to the signal
    # The earlier piece's frames rewritten: from the one whose slot holds the end of its bits.
    frames = [last]
    while frames[0].start > last.ends and index > early.origin:
        index -= 1
        frames.insert(0, early.frame(index))
    if frames[0].start > last.ends:
        return None
    base = frames[0].start
    space = bytearray(b"".join(f.slot for f in frames))
    headers = [f.header for f in frames]
    sides = [f.side for f in frames]
    used = last.ends - base  # where the earlier piece's bits end
    space[used:] = bytes(len(space) - used)  # what followed was the dropped frames' bits
    cost = 0
    need = first.back - (len(space) - used)
    if need > 0 and grow_last:  # a larger last frame, if the later piece's backlog needs the room
        for bitrate in range(((last.header >> 12) & 15) + 1, 15):
            grown = _slot_size(_with_bitrate(last.header, bitrate)) - len(last.slot)
            if grown >= need or bitrate == 14:
                space += bytes(grown)
                headers[-1] = _with_bitrate(last.header, bitrate)
                cost += grown
                break
    for _ in range(_RELAYOUT_LIMIT):
        if local >= len(late.piece):
            break  # the later piece laid out again to its end
        f = late.frame(local)
        free = len(space) - used
        if f.back <= free:
            # From here the later piece's own layout fits: its backlog goes into the free space.
            if f.back:
                space[len(space) - f.back :] = late.space(f.begins, f.start)
            break
        # Laid out again: as far back as the reservoir allows, in a frame large enough to leave
        # the next frame the backlog it expects (or as large as frames go, to catch up).
        back = min(511, free)
        bits = late.space(f.begins, f.ends)
        then = late.frame(local + 1).back if local + 1 < len(late.piece) else 0
        bitrate = (f.header >> 12) & 15
        while _slot_size(_with_bitrate(f.header, bitrate)) < len(bits) - back + then:
            if bitrate == 14:
                if _slot_size(_with_bitrate(f.header, 14)) < len(bits) - back:
                    return None
                break
            bitrate += 1
        header = _with_bitrate(f.header, bitrate)
        at = len(space) - back
        space += bytes(_slot_size(header))
        space[at : at + len(bits)] = bits
        used = at + len(bits)
        cost += _slot_size(header) - len(f.slot)
        headers.append(header)
        sides.append(_with_back(f.side, back))
        local += 1
    else:
        return None
    out = []
    pos = 0
    for header, side in zip(headers, sides, strict=True):
        size = _slot_size(header)
        out.append(header.to_bytes(4, "big") + side + bytes(space[pos : pos + size]))
        pos += size
    return _Seam(cost, out, index, local)


class Joiner:
    """Joins encoded pieces as they come, in order, handing back the frames that are final."""

    def __init__(self, *, grow_last: bool = True):
        """``grow_last=False`` never enlarges the earlier piece's last frame at a seam, so that
        seams needing room are laid out again (a rare path, tested through this)."""
        self._grow_last = grow_last
        self._last: _Piece | None = None  # the latest piece: its frames wait for the next seam
        self._keep_from = 0  # its first frame still to go out (local index)
        self._count = 0

    def add(self, first_frame: int, data: bytes) -> bytes:
        """Take the next piece (its frame 0's index in the track, its bytes); the frames now final.

        Raises ``ValueError`` if the seam cannot be made (never seen: see the module docstring).
        """
        piece = _Piece(first_frame, data)
        self._count += 1
        early, self._last = self._last, piece
        if early is None:
            return b""
        nominal = (self._count - 1) * PIECE_FRAMES
        early_window = _Window(early, max(self._keep_from, nominal - early.first - 2 * CANDIDATES))
        late_window = _Window(piece, 0)
        best: _Seam | None = None
        for seam in range(nominal, nominal + CANDIDATES):
            found = _try_seam(early_window, late_window, seam, self._grow_last)
            if found is not None and (best is None or found.cost < best.cost):
                best = found
                if best.cost == 0 and self._grow_last:
                    break
        if best is None:
            raise ValueError(f"cannot join the MP3 pieces near frame {nominal}")
        kept = memoryview(early.data)[
            early.offsets[self._keep_from] : early.offsets[best.early_stop]
        ]
        self._keep_from = best.late_resume
        return b"".join([kept, *best.frames])

    def finish(self) -> bytes:
        """The last piece's remaining frames."""
        last = self._last
        if last is None or self._keep_from >= len(last):
            return b""
        return bytes(memoryview(last.data)[last.offsets[self._keep_from] :])


def join(pieces: list[tuple[int, bytes]], *, grow_last: bool = True) -> bytes:
    """The bare frames of one stream made of encoded ``pieces`` (track frame index of their frame 0, bytes)."""
    joiner = Joiner(grow_last=grow_last)
    return b"".join([*(joiner.add(first, data) for first, data in pieces), joiner.finish()])


class StreamInfo:
    """What the info frame says of a stream, gathered as its frames are written.

    The info frame (a Xing header with a LAME tag: frame count, byte count,
    seek table, encoder delay and padding) goes in front of the frames.
    Without it players guess a VBR file's length from its first frame's
    bitrate (ffmpeg read the 5-minute dream as 7) and seek to wrong places;
    the LAME tag's encoder delay and padding let decoders drop the samples
    LAME adds at both ends, so the decoded track is exactly as long as the
    input and every word stays where the timeline put it. Its size is known
    from the first frame, so a writer leaves that much room and fills it in
    at the end.
    """

    def __init__(self):
        self.offsets = array("Q")  # where each frame starts, from the first frame on
        self.size = 0  # bytes of frames so far
        self._crc = 0
        self._first: int | None = None  # the first frame's header

    def add(self, frames: bytes) -> None:
        """Count ``frames`` (whole frames, following those added before)."""
        if not frames:
            return
        if self._first is None:
            self._first = int.from_bytes(frames[:4], "big")
        self.offsets.extend(self.size + offset for offset in frame_offsets(frames))
        self.size += len(frames)
        self._crc = crc16(frames, start=self._crc)

    def frame_size(self) -> int:
        """Bytes of the info frame (0 before the first frame: an empty stream gets none)."""
        return 0 if self._first is None else self._layout()[0]

    def _layout(self) -> tuple[int, int, int, bool]:
        """(size, header, side-information bytes, MPEG-1) of the info frame."""
        assert self._first is not None
        header = self._first
        _, mpeg1, mono = frame_info(header)  # type: ignore[misc]
        side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
        needed = 4 + side_info + 120 + 36  # Xing fields, then the 36-byte LAME tag
        for index in range(1, 15):
            # no CRC, no padding
            xing = (header & ~(0xF << 12) & ~(1 << 9)) | (index << 12) | (1 << 16)
            size = frame_info(xing)[0]  # type: ignore[index]
            if size >= needed:
                break
        return size, xing, side_info, mpeg1

    def frame(self, *, samples: int | None, vbr_quality: int = 2) -> bytes:
        """The info frame, for ``samples`` input sample frames (padding is left 0 if unknown)."""
        if self._first is None:
            return b""
        size, xing, side_info, mpeg1 = self._layout()
        offsets = self.offsets
        total = size + self.size
        toc = bytes(
            min(255, int(256 * (size + offsets[int(i * len(offsets) / 100)]) / total))
            for i in range(100)
        )
        frame_samples = 1152 if mpeg1 else 576
        padding = (
            0 if samples is None else max(0, len(offsets) * frame_samples - ENCODER_DELAY - samples)
        )
        # LAME's rule: 100 - 10 × VBR quality - algorithm quality (5)
        quality = 100 - 10 * vbr_quality - 5
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
            + self._crc.to_bytes(2, "big")  # CRC of the audio frames
        )
        frame = xing.to_bytes(4, "big") + bytes(side_info) + body + lame
        frame += crc16(frame).to_bytes(2, "big")  # CRC of the 190 bytes before it
        return frame + bytes(size - len(frame))


def info_frame(audio: bytes, *, samples: int | None, vbr_quality: int = 2) -> bytes:
    """The info frame for the bare frames ``audio`` (see ``StreamInfo``); b"" if there are none."""
    info = StreamInfo()
    info.add(audio)
    return info.frame(samples=samples, vbr_quality=vbr_quality)


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC16 = _crc16_table()


def crc16(data: bytes | memoryview, start: int = 0) -> int:
    """CRC-16 (polynomial 0x8005, reflected, initial 0: LAME's tag checksums); ``start``: the CRC of
    the bytes before ``data``, so a stream is checksummed piece by piece."""
    if len(data) < 2 * _CRC_BLOCK:
        return _crc16_bytes(data, start)
    # The CRC is linear with a zero start, so blocks are checksummed side by
    # side (one numpy step per byte position) and then chained: a whole file
    # costs milliseconds instead of a Python step per byte. Small blocks
    # (few numpy steps), chained a byte of state at a time.
    table = np.asarray(_CRC16, dtype=np.uint16)
    whole = len(data) // _CRC_BLOCK
    blocks = np.frombuffer(data, dtype=np.uint8, count=whole * _CRC_BLOCK).reshape(
        whole, _CRC_BLOCK
    )
    crcs = np.zeros(whole, dtype=np.uint16)
    for j in range(_CRC_BLOCK):
        crcs = (crcs >> 8) ^ table[(crcs ^ blocks[:, j]) & 0xFF]
    low, high = _carry_tables(_CRC_BLOCK)
    crc = start
    for block_crc in crcs.tolist():
        crc = low[crc & 0xFF] ^ high[crc >> 8] ^ block_crc
    return _crc16_bytes(data[whole * _CRC_BLOCK :], start=crc)


_CRC_BLOCK = 512


def _crc16_bytes(data: bytes | memoryview, start: int = 0) -> int:
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
