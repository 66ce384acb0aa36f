"""eSpeak NG through pyttsx3: a light, fast, robotic voice in many languages.

The eSpeak NG library comes from the ``espeakng-loader`` wheel, so no system
package is needed. pyttsx3's eSpeak driver opens ``libespeak-ng.so.1`` by
name, so the wheel's copy is loaded globally first and ``ESPEAK_DATA_PATH``
points at the wheel's data before pyttsx3 initializes. On Windows and macOS
pyttsx3 reaches the system voices instead.

pyttsx3 runs in a child process of its own: Piper carries a second, private
copy of eSpeak NG, and the two copies crash when loaded into one process.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import multiprocessing
import os
import sys
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from ..errors import VoiceError
from . import VoiceEngine, register_engine

# eSpeak's natural rate is 175 words per minute; rate 1.0 maps here.
_BASE_WPM = 175
_SAMPLE_RATE = 22050


@register_engine("pyttsx3")
class Pyttsx3Engine(VoiceEngine):
    """A pyttsx3 voice, spoken by a worker process that owns the TTS library."""

    def __init__(self, voice: str):
        super().__init__(voice)

    @classmethod
    def voices(cls) -> list[str]:
        return list(_voice_list())

    @classmethod
    def default_voice(cls) -> str:
        voices = cls.voices()
        for preferred in ("gmw/en-US", "gmw/en", "en-us", "en"):
            if preferred in voices:
                return preferred
        return voices[0] if voices else "default"

    @property
    def sample_rate(self) -> int:
        return _SAMPLE_RATE

    def reset(self) -> None:
        # eSpeak NG carries pitch-flutter state from one utterance to the next,
        # so the same text can come out slightly differently later in a
        # process; a fresh worker per render makes the render reproducible.
        _shutdown()

    def synthesize(self, text: str, *, rate: float, seed: int) -> np.ndarray:
        return _call(_child_speak, text, self.voice, int(round(_BASE_WPM * rate)), seed)


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _call(fn, *args):
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        pool = _pool
    try:
        result = pool.submit(fn, *args).result()
    except BrokenProcessPool:
        raise VoiceError("the pyttsx3 voice process died; try another voice") from None
    if isinstance(result, str):
        raise VoiceError(result)
    return result


def _shutdown() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None


@functools.lru_cache(maxsize=1)
def _voice_list() -> tuple[str, ...]:
    try:
        return tuple(_call(_child_voices))
    except VoiceError:
        return ()


# --- runs in the child process -------------------------------------------------


@functools.lru_cache(maxsize=1)
def _child_engine():
    """Initialize pyttsx3 once, with the wheel's eSpeak NG on Linux."""
    driver = None
    if sys.platform.startswith("linux"):
        import espeakng_loader

        lib_dir = os.path.dirname(espeakng_loader.get_library_path())
        for name in ("libespeak-ng.so.1", "libespeak-ng.so"):
            path = os.path.join(lib_dir, name)
            if os.path.exists(path):
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                break
        os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
        driver = "espeak"
    import pyttsx3

    with contextlib.redirect_stdout(io.StringIO()):
        return pyttsx3.init(driver)


@functools.lru_cache(maxsize=1)
def _child_seed_function():
    """``espeak_ng_SetRandSeed`` from the loaded library, where there is one."""
    if not sys.platform.startswith("linux"):
        return None
    import espeakng_loader

    lib_dir = os.path.dirname(espeakng_loader.get_library_path())
    try:
        return ctypes.CDLL(os.path.join(lib_dir, "libespeak-ng.so.1")).espeak_ng_SetRandSeed
    except (OSError, AttributeError):
        return None


def _child_voices():
    try:
        return [v.id for v in _child_engine().getProperty("voices")]
    except Exception as exc:  # pyttsx3 raises many kinds; report, don't crash
        return f"pyttsx3 cannot start: {exc}"


def _child_speak(text: str, voice: str, wpm: int, seed: int):
    import soundfile

    try:
        tts = _child_engine()
        # eSpeak NG draws its voicing jitter from an internal generator;
        # reseeding it makes each utterance reproducible whatever came before.
        seed_fn = _child_seed_function()
        if seed_fn is not None:
            seed_fn(ctypes.c_long(seed & 0x7FFFFFFF))
        with tempfile.TemporaryDirectory(prefix="meditation-tts-") as tmp:
            path = os.path.join(tmp, "speech.wav")
            tts.setProperty("voice", voice)
            tts.setProperty("rate", wpm)
            with contextlib.redirect_stdout(io.StringIO()):
                tts.save_to_file(text, path)
                tts.runAndWait()
            if not os.path.exists(path) or os.path.getsize(path) <= 44:
                return np.zeros(0, dtype=np.float32)
            audio, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as exc:
        return f"pyttsx3 could not speak: {exc}"
    audio = audio.mean(axis=1)
    if sample_rate != _SAMPLE_RATE:  # other platforms' voices
        import soxr

        audio = soxr.resample(audio, sample_rate, _SAMPLE_RATE)
    return np.ascontiguousarray(audio, dtype=np.float32)
