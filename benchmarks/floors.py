"""The end-to-end floors, measured as independently of the renderer as we can (issue 21).

- Speech: stock Piper (``piper.PiperVoice`` over the voice package's own model
  file, onnxruntime's default session options but for one intra-op thread),
  speaking every segment text one after another in one session, through
  Piper's own ``synthesize``. Nothing of ours runs: not our seedable graph,
  not our session options, not our phrasing.
- Encode: lameenc, at the renderer's MP3 settings, encoding the render's own
  decoded samples in this process.

``bench.py`` and ``bench_speech.py`` time these beside each render, so load
on a shared machine hits both alike.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class StockPiper:
    """Stock Piper with one session and one thread: the sequential speech floor."""

    def __init__(self, voice: str = "joe"):
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        package = importlib.import_module(f"{voice}_us_piper_voice")
        with open(package.config_path(), encoding="utf-8") as f:
            self.config = PiperConfig.from_dict(json.load(f))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # the floor is one voice on one core
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(package.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.voice = PiperVoice(config=self.config, session=session)

    def speak_all(self, texts: Sequence[str], rate: float) -> tuple[float, float]:
        """Speak ``texts`` one after another at ``rate``; (wall seconds, seconds of speech)."""
        from piper import SynthesisConfig

        from meditation.voices.piper_engine import _length_scale

        # The renderer's rate, as the length scale it gives Piper: the same speech, in Piper's terms.
        config = SynthesisConfig(length_scale=_length_scale(rate))
        samples = 0
        start = time.perf_counter()
        for text in texts:
            for chunk in self.voice.synthesize(text, config):
                samples += len(chunk.audio_float_array)
        return time.perf_counter() - start, samples / self.config.sample_rate


def engine_s(engine, texts: Sequence[str], rate: float) -> float:
    """Seconds our engine takes to speak ``texts`` one after another (what ``speech_jobs 1`` speaks)."""
    from meditation.speech import text_seed

    start = time.perf_counter()
    for text in texts:
        engine.synthesize(text, rate=rate, seed=text_seed(text))
    return time.perf_counter() - start


def script_rate(script: Path, tmp: Path) -> float:
    """The rate ``script`` is spoken at by default (the dream asks for 135 wpm): a render through the cache finds it."""
    from meditation.render import render
    from meditation.settings import RenderSettings

    found = render(RenderSettings(script=script, output=tmp / "pace.wav", soundscape="none"))
    return found.pace.rate


def end_to_end_settings(script: Path, output: Path, rate: float):
    """The render both benchmarks time end to end: the dream's soundscape, no speech cache."""
    from meditation.settings import RenderSettings

    return RenderSettings(
        script=script,
        output=output,
        rate=rate,
        lead_in_s=8,
        tail_s=16,
        soundscape="dream",
        cache=False,
    )


def decoded(path: Path) -> tuple[np.ndarray, int]:
    """A rendered file's samples, ``(n, channels)`` float32, and its rate (libsndfile decodes MP3)."""
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return audio, rate


def lame_s(audio: np.ndarray, sample_rate: int, path: Path, block: int = 32768) -> float:
    """Seconds lameenc takes to encode ``audio`` to ``path`` at the renderer's MP3 settings (VBR -V2)."""
    from meditation._lame_worker import new_encoder

    start = time.perf_counter()
    lame = new_encoder(sample_rate, audio.shape[1])
    with open(path, "wb") as f:
        for i in range(0, len(audio), block):
            pcm = np.clip(np.round(audio[i : i + block] * 32767), -32768, 32767).astype("<i2")
            f.write(lame.encode(pcm.tobytes()))
        f.write(lame.flush())
    return time.perf_counter() - start
