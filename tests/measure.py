"""Small measurements that tests assert on: what a listener would notice."""

from __future__ import annotations

import numpy as np
from scipy import signal


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS of all samples (any shape)."""
    x = np.asarray(x, dtype=np.float64)
    return float(10 * np.log10(np.mean(x * x) + 1e-20))


def peak_db(x: np.ndarray) -> float:
    """Sample peak in dBFS."""
    return float(20 * np.log10(np.max(np.abs(x)) + 1e-20))


def welch_db(x: np.ndarray, sample_rate: int, nperseg: int = 8192):
    """Welch power spectrum of a mono signal: (freqs_hz, power_db)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    f, p = signal.welch(x, fs=sample_rate, nperseg=min(nperseg, len(x)))
    return f, 10 * np.log10(p + 1e-30)


def band_energy_db(x: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> float:
    """Energy in a frequency band, in dB (relative, from a Welch spectrum)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    f, p = signal.welch(x, fs=sample_rate, nperseg=min(8192, len(x)))
    band = (f >= low_hz) & (f < high_hz)
    return float(10 * np.log10(np.sum(p[band]) + 1e-30))


def spectral_centroid_hz(x: np.ndarray, sample_rate: int) -> float:
    """Power-weighted mean frequency."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    f, p = signal.welch(x, fs=sample_rate, nperseg=min(8192, len(x)))
    return float(np.sum(f * p) / (np.sum(p) + 1e-30))


def envelope_db(x: np.ndarray, sample_rate: int, window_s: float = 0.05) -> np.ndarray:
    """Short-term RMS level in dB, one value per window."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    n = max(1, int(window_s * sample_rate))
    frames = len(x) // n
    x = x[: frames * n].reshape(frames, n)
    return 10 * np.log10(np.mean(x * x, axis=1) + 1e-20)


def max_click_ratio(x: np.ndarray) -> float:
    """Largest sample-to-sample jump relative to the typical jump (a click shows as a big ratio)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    d = np.abs(np.diff(x))
    return float(d.max() / (np.percentile(d, 99) + 1e-12))


def boundary_jump_ratio(x: np.ndarray, block: int | None = None, around: int = 64) -> float:
    """Largest sample step at a layer block boundary relative to the largest step near it (~1 if seamless)."""
    if block is None:
        from meditation.soundscape.layers import BLOCK_SIZE

        block = BLOCK_SIZE
    worst = 0.0
    for ch in range(x.shape[1]):
        d = np.abs(np.diff(x[:, ch].astype(np.float64)))
        for pos in range(block, len(x) - around, block):
            j = pos - 1
            near = np.concatenate([d[j - around : j], d[j + 1 : j + around]])
            worst = max(worst, (d[j] + 1e-9) / (near.max() + 1e-9))
    return worst


def render_in_chunks(layer, n_samples: int, chunk: int) -> np.ndarray:
    """A layer's next ``n_samples``, asked for ``chunk`` samples at a time."""
    parts, left = [], n_samples
    while left > 0:
        parts.append(layer.render(min(chunk, left)))
        left -= chunk
    return np.concatenate(parts)
