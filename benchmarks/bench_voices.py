"""Each voice's real-time factor and DNSMOS P.808 on the same text.

Run ``python benchmarks/bench_voices.py`` (a minute or two). For every neural
voice and the default pyttsx3 voice: the first sentences of the dream spoken
by the engine alone (model loaded and warmed up first), timed over
``--runs`` runs (median), and the speech rated by DNSMOS P.808 (the
``speechmos`` package; its models ship in the wheel) at 16 kHz.

Real-time factor (RTF) = seconds of speech per second of wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from meditation.script import read_script  # noqa: E402
from meditation.segments import plan_segments  # noqa: E402
from meditation.settings import DEFAULT_SCRIPT  # noqa: E402
from meditation.speech import text_seed  # noqa: E402
from meditation.voices import load_voice, resolve_voice  # noqa: E402

VOICES = ("piper:joe", "hibari:heart", "pyttsx3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.9)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    results = voice_figures(args.sentences, args.runs, args.rate)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def voice_figures(sentences: int = 12, runs: int = 3, rate: float = 0.9) -> dict:
    """``{voice: {"speech_s", "rtf", "dnsmos_p808"}}`` for each voice, on the dream's first sentences."""
    planned = [s for s in plan_segments(read_script(DEFAULT_SCRIPT), rate=rate) if s.spoken]
    texts = [s.text for s in planned[:sentences]]
    results = {}
    for name in VOICES:
        voice = resolve_voice(name)
        engine = load_voice(voice)
        engine.reset()
        engine.synthesize("Warm up.", rate=rate, seed=1)
        walls, audio = [], []
        for _ in range(runs):
            start = time.perf_counter()
            audio = [engine.synthesize(t, rate=rate, seed=text_seed(t)) for t in texts]
            walls.append(time.perf_counter() - start)
        engine.reset()
        seconds = sum(len(a) for a in audio) / engine.sample_rate
        results[voice] = {
            "speech_s": round(seconds, 2),
            "rtf": round(seconds / statistics.median(walls), 1),
            "dnsmos_p808": _dnsmos(audio, engine.sample_rate),
        }
    return results


def table(results: dict) -> str:
    return "\n".join(
        f"{voice:20s} RTF {r['rtf']:7.1f}x  DNSMOS P.808 {r['dnsmos_p808']}  "
        f"({r['speech_s']:.1f} s of speech)"
        for voice, r in results.items()
    )


def _dnsmos(pieces: list[np.ndarray], sample_rate: int) -> float | None:
    try:
        import soxr
        from speechmos import dnsmos
    except ImportError:
        return None
    gap = np.zeros(int(0.3 * sample_rate), np.float32)
    speech = np.concatenate([x for p in pieces for x in (p, gap)])
    speech = soxr.resample(speech, sample_rate, 16000).astype(np.float32)
    speech *= 0.9 / max(1e-9, float(np.max(np.abs(speech))))
    return round(float(dnsmos.run(speech, 16000)["p808_mos"]), 2)


if __name__ == "__main__":
    main()
