"""The natural floor of each voice's rate (``meditation.pace.NATURAL_FLOOR``).

Run ``python benchmarks/pace_floor.py piper:joe,hibari:heart 0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.9,1.0``
(a few minutes): six held-out sentences spoken at each rate; one JSON line per
voice and rate with words per minute, syllables per second of speech and
DNSMOS (P.808, overall, signal; ``speechmos``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meditation.pace import count_words, segment_features  # noqa: E402
from meditation.speech import synthesize  # noqa: E402

TEXTS = [
    "Let your shoulders drop away from your ears, and feel the weight of your arms resting at your sides.",
    "There is nothing you need to do right now, nowhere you need to be.",
    "Notice the cool air as it enters through the nose, and the warmer air as it leaves.",
    "If your mind wanders, that is perfectly fine; simply return to the next breath.",
    "Picture a quiet lake at dawn, its surface still, reflecting the pale sky above.",
    "With each exhalation, let a little more of the day slip away from you.",
]


def main() -> None:
    from speechmos import dnsmos  # noqa: PLC0415 - optional: the test/benchmark extra

    voices = sys.argv[1].split(",") if len(sys.argv) > 1 else ["piper:joe", "hibari:heart"]
    rates = [float(r) for r in sys.argv[2].split(",")] if len(sys.argv) > 2 else [0.5, 0.6, 0.7]
    syllables = sum(segment_features(t)[0] for t in TEXTS)
    words = sum(count_words(t) for t in TEXTS)
    gap = np.zeros(4800, np.float32)
    for voice in voices:
        for rate in rates:
            audio = synthesize(TEXTS, voice=voice, rate=rate, sample_rate=16000, jobs=1)
            seconds = sum(len(a) for a in audio) / 16000
            clip = np.concatenate([x for a in audio for x in (a, gap)])
            clip = clip / max(1e-9, float(np.max(np.abs(clip)))) * 0.7
            mos = dnsmos.run(clip, 16000)
            row = {
                "voice": voice,
                "rate": rate,
                "wpm": round(60 * words / seconds, 1),
                "syllables_per_s": round(syllables / seconds, 2),
                "p808": round(float(mos["p808_mos"]), 3),
                "ovrl": round(float(mos["ovrl_mos"]), 3),
                "sig": round(float(mos["sig_mos"]), 3),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
