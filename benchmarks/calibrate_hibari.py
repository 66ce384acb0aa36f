"""Measure hibari's spoken duration against its ``speed`` and print our rate -> speed table.

Run ``python benchmarks/calibrate_hibari.py`` (about a minute). The table it
prints is ``_SPEED_BY_RATE`` in ``meditation/voices/hibari_engine.py``; each
line also gives how far the chosen speed lands from 1/rate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meditation.speech import trim_silence  # noqa: E402

# The paragraphs the table was measured on (tests/test_hibari.py checks a held-out one).
TEXTS = [
    "Breathe in slowly, and let the air fill your chest. Feel the weight of your body "
    "resting on the ground.",
    "With each breath out, let the day fall away, and notice the quiet that remains.",
    "You are walking along a river in a green valley. The water is clear and cool, and the "
    "stones shine beneath it.",
    "Let your shoulders soften. There is nowhere to go and nothing to do. Simply rest here, "
    "in this moment, as you are.",
]
SPEEDS = np.round(np.concatenate([np.arange(0.3, 2.01, 0.01), np.arange(2.1, 3.05, 0.1)]), 2)
RATES = np.round(np.arange(0.5, 2.001, 0.05), 2)


def main() -> None:
    from hibari import Hibari

    tts = Hibari()
    relative = []
    for text in TEXTS:
        seconds = np.array(
            [len(trim_silence(tts(text, speed=s, seed=1), 24000)) / 24000 for s in SPEEDS]
        )
        relative.append(seconds / seconds[list(SPEEDS).index(1.0)])
    curve = np.mean(relative, axis=0)
    pairs = []
    for rate in RATES:
        i = int(np.argmin(np.abs(curve - 1 / rate)))
        pairs.append((rate, SPEEDS[i]))
        print(
            f"rate {rate:.2f}: speed {SPEEDS[i]:.2f}, {100 * (curve[i] * rate - 1):+.1f} % off 1/rate"
        )
    print(", ".join(f"({r:.2f}, {s:.2f})" for r, s in pairs))


if __name__ == "__main__":
    main()
