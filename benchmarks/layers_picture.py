"""Draw docs/layers.png: a spectrogram strip of each palette layer, so a reader sees what each is.

Run ``python benchmarks/layers_picture.py`` (about half a minute). Each strip
is 20 s of the layer alone at default parameters (cue-only layers get a cue
at 2 s), mono, 0-8 kHz, dB over 60 dB of range.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

FS = 22050
SECONDS = 20.0
_CUES = {
    "thunder": ("roll", {}),
    "owl": ("hoot", {}),
    "temple-bell": ("strike", {}),
    "frogs": ("chorus", {"duration_s": 4.0}),
}


def main(out: Path = ROOT / "docs" / "layers.png") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from bench_layers import palette
    from scipy import signal

    from meditation.soundscape.layers import LAYERS, Cue, render_layer

    names = [n for n in palette() if n != "drone"]
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 1.15 * len(names)), sharex=True)
    for ax, name in zip(axes, names, strict=True):
        cues = [Cue(2.0, _CUES[name][0], _CUES[name][1])] if name in _CUES else []
        x = render_layer(
            name, int(SECONDS * FS), sample_rate=FS, rng=np.random.default_rng(1), cues=cues
        ).mean(axis=1)
        f, t, s = signal.spectrogram(x, fs=FS, nperseg=1024, noverlap=768)
        db = 10 * np.log10(s + 1e-12)
        top = db.max()
        ax.pcolormesh(t, f / 1000, db, vmin=top - 60, vmax=top, shading="auto", cmap="magma")
        ax.set_ylim(0, 8)
        ax.set_yticks([0, 4, 8])
        ax.text(
            0.005,
            0.93,
            f"{name}: {LAYERS[name].description}",
            transform=ax.transAxes,
            color="white",
            fontsize=7.5,
            va="top",
        )
        ax.set_ylabel("kHz", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("seconds")
    fig.suptitle(
        "The soundscape palette: 20 s of each layer (spectrogram, 60 dB range)", fontsize=10
    )
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(out)
    return out


if __name__ == "__main__":
    print(main())
