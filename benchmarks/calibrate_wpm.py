"""Measure how long each voice takes to say a segment at rate 1.0: the base of ``--wpm``.

Run ``python benchmarks/calibrate_wpm.py`` (a minute or two). Every sentence
of the dream is spoken at rate 1.0 and trimmed as the speech stage trims it;
a least-squares fit of its duration on (syllables, clause marks, 1) gives the
three numbers per voice in ``meditation/pace.py``'s ``SECONDS_AT_RATE_1``.
Words per minute alone do not carry from one text to another (the dream
runs at 200, a plainer script at 230, with the same voice and rate);
syllables and clause pauses do.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meditation.pace import segment_features  # noqa: E402
from meditation.script import read_script  # noqa: E402
from meditation.segments import plan_segments  # noqa: E402
from meditation.settings import DEFAULT_SCRIPT  # noqa: E402
from meditation.speech import synthesize  # noqa: E402

VOICES = ("piper:joe", "hibari:heart", "pyttsx3")


def main() -> None:
    texts = [s.text for s in plan_segments(read_script(DEFAULT_SCRIPT), rate=1.0) if s.spoken]
    features = np.array([segment_features(t) for t in texts], dtype=float)
    for voice in VOICES:
        audio = synthesize(texts, voice=voice, rate=1.0, sample_rate=24000)
        seconds = np.array([len(a) / 24000 for a in audio])
        coef, *_ = np.linalg.lstsq(features, seconds, rcond=None)
        print(f'"{voice}": ({coef[0]:.4f}, {coef[1]:.4f}, {coef[2]:.4f}),')


if __name__ == "__main__":
    main()
