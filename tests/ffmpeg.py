"""An independent decoder and loudness meter: the ffmpeg binary shipped by imageio-ffmpeg."""

from __future__ import annotations

import re
import subprocess


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def decode_errors(path) -> str:
    """What ffmpeg complains about while decoding the whole file ('' if nothing)."""
    result = subprocess.run(
        [ffmpeg(), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.stderr.strip() + (
        "" if result.returncode == 0 else f" (exit {result.returncode})"
    )


def probe(path) -> dict:
    """Sample rate, channels and duration as ffmpeg reads them."""
    result = subprocess.run(
        [ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60
    )
    text = result.stderr
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


def ebur128(path) -> tuple[float, float]:
    """(integrated loudness LUFS, true peak dBTP) measured by ffmpeg's ebur128 filter."""
    result = subprocess.run(
        [
            ffmpeg(),
            "-hide_banner",
            "-nostats",
            "-i",
            str(path),
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stderr[result.stderr.rfind("Summary:") :]
    loudness = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return loudness, peak
