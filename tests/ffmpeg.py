"""An independent decoder and loudness meter: the ffmpeg binary shipped by imageio-ffmpeg."""

from __future__ import annotations

import re
import subprocess


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([ffmpeg(), *args], capture_output=True, text=True, timeout=timeout)


def decode_errors(path, to: str = "null") -> str:
    """What ffmpeg complains about while converting the whole file to format ``to`` ('' if nothing):
    ``null`` decodes audio; ``ass`` reads captions."""
    result = _run("-v", "error", "-i", str(path), "-f", to, "-")
    return result.stderr.strip() + (
        "" if result.returncode == 0 else f" (exit {result.returncode})"
    )


def decoded_duration(path) -> float:
    """Length of the audio as ffmpeg decodes it, all of it (not a header's estimate)."""
    result = _run("-hide_banner", "-i", str(path), "-f", "null", "-")
    h, m, s = re.findall(r"time=(\d+):(\d+):([\d.]+)", result.stderr)[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def header(path) -> str:
    """What ffmpeg says of a file on opening it: format, chapters, streams and their tags."""
    return _run("-hide_banner", "-i", str(path), timeout=60).stderr


def probe(path) -> dict:
    """Sample rate, channels and duration as ffmpeg reads them."""
    text = header(path)
    stream = re.search(r"Audio: (\w+).*?, (\d+) Hz, (\w+)", text)
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    h, m, s = dur.groups()
    return {
        "codec": stream.group(1),
        "sample_rate": int(stream.group(2)),
        "channels": stream.group(3),
        "duration": int(h) * 3600 + int(m) * 60 + float(s),
        "text": text,
    }


def ffmpeg_chapters(path) -> list[tuple[float, str]]:
    """(start seconds, title) of each chapter, as ffmpeg's demuxer reads them."""
    text = header(path).split("Stream #0")[
        0
    ]  # the input's header: chapters come before the streams
    starts = [float(s) for s in re.findall(r"Chapter #0:\d+: start (-?[\d.]+)", text)]
    titles = re.findall(r"Chapter #0:\d+:.*?\n\s+Metadata:\s*\n\s+title\s*: (.*)", text)
    return list(zip(starts, titles))


def attached_picture(path) -> str | None:
    """The codec and size of an attached picture stream, as ffmpeg reads it ('png 64x48'), or None."""
    found = re.search(r"Video: (\w+).*?, (\d+x\d+).*\(attached pic\)", header(path))
    return f"{found.group(1)} {found.group(2)}" if found else None


def ebur128(path) -> tuple[float, float]:
    """(integrated loudness LUFS, true peak dBTP) measured by ffmpeg's ebur128 filter."""
    result = _run(
        "-hide_banner",
        "-nostats",
        "-i",
        str(path),
        "-af",
        "ebur128=peak=true",
        "-f",
        "null",
        "-",
        timeout=600,
    )
    summary = result.stderr[result.stderr.rfind("Summary:") :]
    loudness = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return loudness, peak
