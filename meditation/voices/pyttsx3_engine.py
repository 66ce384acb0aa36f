"""eSpeak NG through pyttsx3: a light, fast, robotic voice in many languages.

The eSpeak NG library comes from the ``espeakng-loader`` wheel, so no system
package is needed. pyttsx3's eSpeak driver opens ``libespeak-ng.so.1`` by
name, so the wheel's copy is loaded globally first and ``ESPEAK_DATA_PATH``
points at the wheel's data before pyttsx3 initializes. On Windows and macOS
pyttsx3 reaches the system voices instead.

pyttsx3 runs in a child process of its own: Piper carries a second, private
copy of eSpeak NG, and the two copies crash when loaded into one process.
The child is a plain subprocess spoken to over its stdin and stdout (not
multiprocessing): it needs no ``__main__`` guard in the caller's script, no
resource tracker, and it starts deaf to Ctrl-C. It exits when its parent
dies (see ``meditation._lifecycle``) or closes the pipe.

Each sentence is spoken by a fresh ``fork`` of the initialized child (on
Linux), so it starts from the same eSpeak state whatever was spoken before:
eSpeak NG keeps its pitch flutter position in a function-level static that
no API resets, and a sentence used to come out differently after different
sentences (two batches on an empty cache cached different takes of it).
Those copies also speak side by side: requests may follow one another
without waiting for the answer (one per speech job, see ``speech``), the
child forks a copy for each at once and answers in the order asked. Forking
costs nothing to start (the copy is initialized), where a second helper
process would take about a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import importlib.util
import io
import os
import pickle
import selectors
import struct
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .._lifecycle import (
    die_with_parent,
    ignore_interrupts,
    popen_quietly,
    started_from_main_thread,
    store_quietly,
)
from ..cache import cache_dir
from ..errors import VoiceError
from .registry import VoiceEngine, VoiceInfo, register_engine

if TYPE_CHECKING:  # imported where used: listing voices needs no numpy
    import numpy as np  # noqa: PLC0415 - start-up: loaded only where used

# eSpeak's natural rate is 175 words per minute; rate 1.0 maps here.
_BASE_WPM = 175
_SAMPLE_RATE = 22050


@register_engine("pyttsx3")
class Pyttsx3Engine(VoiceEngine):
    """A pyttsx3 voice, spoken by a worker process that owns the TTS library."""

    concurrent = True
    """``synthesize`` may run in several threads at once: the helper speaks
    their sentences side by side (in forked copies, on Linux) and answers in order."""

    def __init__(self, voice: str):
        super().__init__(voice)

    @classmethod
    def voices(cls) -> list[str]:
        return list(_voice_list())

    @classmethod
    def default_voice(cls) -> str:
        voices = cls.voices()
        for preferred in ("gmw/en-us", "gmw/en", "en-us", "en"):
            if preferred in voices:
                return preferred
        return voices[0] if voices else "default"

    @classmethod
    def describe(cls, voice: str) -> VoiceInfo:
        # eSpeak's voice names are its language tags (``gmw/en-us``: family/language).
        return VoiceInfo(language=voice.rpartition("/")[2], sample_rate=_SAMPLE_RATE)

    @property
    def sample_rate(self) -> int:
        return _SAMPLE_RATE

    def reset(self) -> None:
        # Release the helper process (a render calls this at its end).
        _shutdown()

    def synthesize(self, text: str, *, rate: float, seed: int) -> np.ndarray:
        return _call("speak", text, self.voice, int(round(_BASE_WPM * rate)), seed)


_LENGTH = struct.Struct("<Q")


class _Child:
    """The helper process and its two pipes.

    Calls from several threads are pipelined: each sends its request at
    once and reads its answer in turn, since the helper answers in the
    order it was asked.
    """

    def __init__(self):
        env = dict(os.environ)
        package_parent = str(Path(__file__).resolve().parent.parent.parent)
        env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
        code = "from meditation.voices.pyttsx3_engine import _child_main; _child_main()"
        pdeathsig = "1" if started_from_main_thread() else "0"
        self.process = popen_quietly(
            [sys.executable, "-c", code, str(os.getpid()), pdeathsig],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._sending = threading.Lock()
        self._turn = threading.Condition()
        self._asked = 0  # requests sent
        self._answered = 0  # answers read
        self._users = 0  # calls that hold this child (see ``_call``)
        self.broken = False

    def enter(self) -> None:
        with self._turn:
            self._users += 1

    def leave(self) -> None:
        with self._turn:
            self._users -= 1
            self._turn.notify_all()

    def call(self, name: str, *args):
        try:
            with self._sending:
                if self.broken:
                    raise EOFError
                ticket = self._asked
                self._asked += 1
                _send(self.process.stdin, (name, args))
            with self._turn:
                self._turn.wait_for(lambda: self._answered == ticket or self.broken)
                if self.broken:
                    raise EOFError
                try:
                    return _receive(self.process.stdout)
                finally:
                    self._answered += 1
                    self._turn.notify_all()
        except (OSError, EOFError, pickle.UnpicklingError):
            self.fail()
            raise VoiceError("the pyttsx3 voice process died; try another voice") from None
        except BaseException:
            # Interrupted mid-message: the pipes are out of step for good.
            self.fail()
            raise

    def fail(self) -> None:
        """Mark the exchange broken: every waiting call gives up."""
        with self._turn:
            self.broken = True
            self._turn.notify_all()

    def close(self) -> None:
        """End the helper once the calls that hold it are answered (another render may be speaking)."""
        with self._turn:
            self._turn.wait_for(lambda: self._users == 0)
        try:
            self.process.stdin.close()  # end of input: the child exits
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
            return
        self.process.stdout.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream):
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


_child: _Child | None = None
_child_lock = threading.Lock()


def _call(name: str, *args):
    global _child
    with _child_lock:
        if _child is None:
            _child = _Child()
        child = _child
        child.enter()
    try:
        result = child.call(name, *args)
    except BaseException:
        with _child_lock:
            if _child is child:  # start afresh next time
                _child = None
                child.kill()
        raise
    finally:
        child.leave()
    if isinstance(result, str):
        raise VoiceError(result)
    return result


def _shutdown() -> None:
    global _child
    with _child_lock:
        child, _child = _child, None  # a call from now on starts a new helper
    if child is not None:
        child.close()


@functools.lru_cache(maxsize=1)
def _voice_list() -> tuple[str, ...]:
    # Asking eSpeak means starting its helper process (about a second);
    # the list only changes with the installed eSpeak data, so it is kept
    # on disk under a key of that data's location and dates.
    stored = _stored_voice_list()
    if stored is not None:
        return stored
    try:
        voices = tuple(_call("voices"))
    except VoiceError:
        return ()
    finally:
        _shutdown()  # a listing must not leave a process behind
    _store_voice_list(voices)
    return voices


def _voice_list_file():
    """Where the voice list is kept, or None where it may change without notice (system voices)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import espeakng_loader  # noqa: PLC0415 - start-up: loaded only where used

        data = espeakng_loader.get_data_path()
        # Where pyttsx3 and the eSpeak wheel are installed, and when (cheaper than reading their metadata).
        spec = importlib.util.find_spec("pyttsx3")
        if spec is None or spec.origin is None:
            return None  # not installed: just ask eSpeak
        origins = [spec.origin, espeakng_loader.__file__]
        parts = [data, *origins, *(str(os.stat(o).st_mtime_ns) for o in origins)]
        parts += [
            str(os.stat(os.path.join(data, sub)).st_mtime_ns)
            for sub in ("lang", "voices")
            if os.path.isdir(os.path.join(data, sub))
        ]
        key = hashlib.blake2b("\0".join(parts).encode("utf-8"), digest_size=8).hexdigest()
        return os.path.join(cache_dir(), f"espeak-voices-{key}.txt")
    except Exception:  # not installed, or no cache folder: just ask eSpeak
        return None


def _stored_voice_list() -> tuple[str, ...] | None:
    path = _voice_list_file()
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, TypeError):
        return None
    return tuple(lines[:-1]) if lines and lines[-1] == "" and len(lines) > 1 else None


def _store_voice_list(voices: tuple[str, ...]) -> None:
    path = _voice_list_file()
    if path is not None and voices:
        # A read-only cache folder only costs the next listing a second.
        store_quietly(Path(path), "".join(v + "\n" for v in voices).encode("utf-8"))


# --- runs in the child process -------------------------------------------------


class _LinuxSpeaker:
    """pyttsx3's own eSpeak NG binding, driven synchronously.

    pyttsx3's event loop returns before eSpeak's asynchronous output has been
    written out now and then (so a sentence comes back silent); initializing
    the binding in synchronous mode and collecting samples in a callback
    avoids that race. Voices and properties go through pyttsx3's driver.
    """

    def __init__(self):
        import espeakng_loader  # noqa: PLC0415 - start-up: loaded only where used

        lib_dir = os.path.dirname(espeakng_loader.get_library_path())
        for name in ("libespeak-ng.so.1", "libespeak-ng.so"):
            path = os.path.join(lib_dir, name)
            if os.path.exists(path):
                self._lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                break
        os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
        from pyttsx3.drivers import _espeak  # noqa: PLC0415 - start-up: loaded only where used
        from pyttsx3.drivers.espeak import EspeakDriver  # noqa: PLC0415 - start-up: loaded only where used

        self._espeak = _espeak
        self._driver = EspeakDriver  # static property helpers only; never started
        self.sample_rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
        if self.sample_rate <= 0:
            raise RuntimeError("eSpeak NG could not initialize")
        self._pieces: list[bytes] = []
        self._settings: tuple[str, int] | None = None
        _espeak.SetSynthCallback(self._collect)

    def _collect(self, wav, numsamples, events) -> int:
        if numsamples > 0:
            self._pieces.append(ctypes.string_at(wav, numsamples * 2))
        return 0

    def voices(self) -> list[str]:
        return [v.id for v in self._driver.getProperty("voices")]

    def speak(self, text: str, voice: str, wpm: int, seed: int) -> np.ndarray:
        return self.start(text, voice, wpm, seed).wait()

    def start(self, text: str, voice: str, wpm: int, seed: int) -> _Take:
        """Start speaking in a forked copy of this process, which starts from the state right after initialization.

        Voice and rate are set here, before the fork: loading a voice (and
        its dictionary) is most of the cost of a short sentence, and it only
        sets parameters; the synthesis state that carries over lives in the
        copy and vanishes with it.
        """
        if self._settings != (voice, wpm):
            self._driver.setProperty("voice", voice)
            self._driver.setProperty("rate", wpm)
            self._settings = (voice, wpm)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the copy: speak, send the samples, vanish without running any cleanup
            status = 1
            try:
                os.close(read_end)
                pcm = self._speak_here(text, seed)
                with os.fdopen(write_end, "wb") as out:
                    out.write(pcm)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        return _Take(pid, read_end)

    def _speak_here(self, text: str, seed: int) -> bytes:
        # eSpeak NG's voicing jitter comes from its own generator: reseed it per utterance.
        seed_fn = getattr(self._lib, "espeak_ng_SetRandSeed", None)
        if seed_fn is not None:
            seed_fn(ctypes.c_long(seed & 0x7FFFFFFF))
        self._pieces = []
        self._espeak.Synth(text, flags=self._espeak.ENDPAUSE | self._espeak.CHARS_UTF8)
        return b"".join(self._pieces)


class _Take:
    """A sentence being spoken by a forked copy: its samples arrive on a pipe."""

    def __init__(self, pid: int, fd: int):
        self.pid, self.fd = pid, fd
        self._pieces: list[bytes] = []
        self.ended = False

    def read(self) -> bool:
        """Read what has arrived (call when the pipe is readable); True at the end."""
        data = os.read(self.fd, 1 << 16)
        if data:
            self._pieces.append(data)
            return False
        self.ended = True
        return True

    def wait(self) -> np.ndarray:
        """The samples, once the copy has sent them all and ended."""
        while not (self.ended or self.read()):
            pass
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        if status != 0:
            raise RuntimeError("eSpeak NG stopped while speaking")
        import numpy as np  # noqa: PLC0415 - start-up: loaded only where used

        return np.frombuffer(b"".join(self._pieces), dtype="<i2").astype(np.float32) / 32768.0


class _SystemSpeaker:
    """pyttsx3 on Windows and macOS: the system voices, saved through a temporary file."""

    def __init__(self):
        import pyttsx3  # noqa: PLC0415 - start-up: loaded only where used

        with contextlib.redirect_stdout(io.StringIO()):
            self._tts = pyttsx3.init()
        self.sample_rate = _SAMPLE_RATE

    def voices(self) -> list[str]:
        return [v.id for v in self._tts.getProperty("voices")]

    def speak(self, text: str, voice: str, wpm: int, seed: int) -> np.ndarray:
        import numpy as np  # noqa: PLC0415 - start-up: loaded only where used
        import soundfile  # noqa: PLC0415 - start-up: loaded only where used

        with tempfile.TemporaryDirectory(prefix="meditation-tts-") as tmp:
            path = os.path.join(tmp, "speech.wav")
            self._tts.setProperty("voice", voice)
            self._tts.setProperty("rate", wpm)
            with contextlib.redirect_stdout(io.StringIO()):
                self._tts.save_to_file(text, path)
                self._tts.runAndWait()
            if not os.path.exists(path) or os.path.getsize(path) <= 44:
                return np.zeros(0, dtype=np.float32)
            audio, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if sample_rate != _SAMPLE_RATE:
            import soxr  # noqa: PLC0415 - start-up: loaded only where used

            audio = soxr.resample(audio, sample_rate, _SAMPLE_RATE)
        return audio


@functools.lru_cache(maxsize=1)
def _child_engine():
    return _LinuxSpeaker() if sys.platform.startswith("linux") else _SystemSpeaker()


def _child_main() -> None:
    """The helper process: answer requests on stdin until it closes or the parent dies.

    Sentences are spoken side by side: a request is read as soon as it
    arrives, each sentence is forked at once, and the answers go out in
    the order of the requests.
    """
    ignore_interrupts()
    parent, pdeathsig = int(sys.argv[1]), sys.argv[2] == "1"
    die_with_parent(parent, pdeathsig=pdeathsig)
    requests = sys.stdin.buffer.fileno()
    replies = os.fdopen(os.dup(1), "wb")
    # Anything eSpeak or pyttsx3 prints must not land in the replies.
    os.dup2(2, 1)
    handlers: dict[str, Callable[..., object]] = {"voices": _child_voices, "speak": _child_speak}
    answers: deque[object] = deque()  # in the order asked: an answer, or a _Take still speaking
    inbox = bytearray()
    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ)
    while True:
        while answers and not (isinstance(answers[0], _Take) and not answers[0].ended):
            answer = answers.popleft()
            if isinstance(answer, _Take):
                answer = _child_finish(answer)
            try:
                _send(replies, answer)
            except BrokenPipeError:
                return
        for key, _ in selector.select():
            if key.fd == requests:
                data = os.read(requests, 1 << 16)
                if not data:
                    return  # the parent closed the pipe: nothing more is wanted
                inbox += data
                for name, args in _messages(inbox):
                    answer = handlers[name](*args)
                    if isinstance(answer, _Take):
                        selector.register(answer.fd, selectors.EVENT_READ, answer)
                    answers.append(answer)
            elif key.data.read():
                selector.unregister(key.fd)  # before its descriptor is closed (``wait``) and reused


def _messages(inbox: bytearray):
    """Take every complete message off the front of ``inbox``."""
    while len(inbox) >= _LENGTH.size:
        (size,) = _LENGTH.unpack_from(inbox)
        end = _LENGTH.size + size
        if len(inbox) < end:
            return
        message = pickle.loads(bytes(inbox[_LENGTH.size : end]))
        del inbox[:end]
        yield message


def _child_voices():
    try:
        return _child_engine().voices()
    except Exception as exc:  # pyttsx3 raises many kinds; report, don't crash
        return f"pyttsx3 cannot start: {exc}"


def _child_speak(text: str, voice: str, wpm: int, seed: int):
    """The samples, or (Linux) a take being spoken; an error as one line of text."""
    try:
        speaker = _child_engine()
        if isinstance(speaker, _LinuxSpeaker):
            return speaker.start(text, voice, wpm, seed)
        audio = speaker.speak(text, voice, wpm, seed)
    except Exception as exc:
        return f"pyttsx3 could not speak: {exc}"
    return _child_resampled(audio, speaker.sample_rate)


def _child_finish(take: _Take):
    try:
        audio = take.wait()
    except Exception as exc:
        return f"pyttsx3 could not speak: {exc}"
    return _child_resampled(audio, _child_engine().sample_rate)


def _child_resampled(audio, sample_rate: int):
    import numpy as np  # noqa: PLC0415 - start-up: loaded only where used

    if sample_rate != _SAMPLE_RATE:
        import soxr  # noqa: PLC0415 - start-up: loaded only where used

        audio = soxr.resample(audio, sample_rate, _SAMPLE_RATE)
    return np.ascontiguousarray(audio, dtype=np.float32)
