"""Stage 6: mix the voice over the ambience, chunk by chunk.

The ambience ducks under the voice: the duck envelope comes from the timeline
(where speech is known to be), with a gentle attack before each word, a slow
release after, and held through pauses shorter than ``bridge_s`` so the bed
does not pump between sentences. The voice passes through the voice chain
(``voicechain``) as one continuous stream, so its reverb rings on into the
pauses. Track fades are equal-power and sample-exact: the fade-in starts at
zero on the first sample and the fade-out reaches zero on the last. A mix made
in any chunk size is the same.
"""

from __future__ import annotations

import bisect
import dataclasses
import queue
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from ._threads import on_stop
from .levels import LOUDNESS_SCOPES, VOICE_CREST_DB, VOICE_LEVEL_SAMPLE_S, VOICE_RMS_DB
from .limiter import TruePeakLimiter
from .timeline import Timeline
from .voicechain import VoiceChain, measure_makeup_db
from .voicefx import VoiceFx

__all__ = [
    "limit_crest",
    "Ducking",
    "AmbienceSource",
    "VoiceBus",
    "VoicePart",
    "DuckEnvelope",
    "MixChunk",
    "mix_chunks",
    "track_fades_s",
    "fade_gain",
    "loudness_range",
    "VOICE_RMS_DB",
    "VOICE_LEVEL_SAMPLE_S",
    "voice_opening",
    "mix_chunk",
    "CHUNK",
]

CHUNK = 32768


@dataclass(frozen=True)
class Ducking:
    """How the ambience makes room for the voice."""

    depth_db: float = 6.0
    """Extra attenuation of the ambience while the voice speaks."""
    attack_s: float = 0.25
    """Time to duck fully, starting before the first word."""
    release_s: float = 0.8
    """Time to come back up after the voice stops."""
    bridge_s: float = 1.2
    """Pauses shorter than this stay ducked (no pumping between sentences)."""


class AmbienceSource(Protocol):
    """What the mixer needs of a soundscape: named stereo stems, streamed."""

    names: tuple[str, ...]

    def render(self, n_samples: int) -> dict[str, np.ndarray]:
        """The next ``n_samples`` of every layer that sounds, levels and fades applied (silent ones may be left out)."""


def limit_crest(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Limit a spoken segment's peaks to ``VOICE_CREST_DB`` above its own RMS.

    A few plosives would otherwise decide how loud the whole track can be.
    The speech stage runs this in its worker thread, beside synthesis.
    """
    if len(audio) == 0:
        return audio
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms <= 0:
        return audio
    scale = np.float32(10 ** (VOICE_RMS_DB / 20) / rms)
    limiter = TruePeakLimiter(
        sample_rate, ceiling_db=VOICE_RMS_DB + VOICE_CREST_DB, attack_s=0.003, release_s=0.05
    )
    stereo = np.repeat((audio * scale)[:, None], 2, axis=1)
    limited = np.concatenate([limiter.process(stereo), limiter.flush()])
    return np.ascontiguousarray(limited[:, 0] / scale)


def voice_opening(audio: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray] | None:
    """The first ``VOICE_LEVEL_SAMPLE_S`` seconds of speech, segment by segment; None while ``audio`` holds less."""
    limit = int(VOICE_LEVEL_SAMPLE_S * sample_rate)
    parts, have = [], 0
    for a in audio:
        if have >= limit:
            break
        parts.append(a[: limit - have])
        have += len(parts[-1])
    return parts if have >= limit else None


@dataclass(frozen=True)
class VoicePart:
    """One speaker's share of the voice (``meditation.speakers``): its own level, chain and place."""

    stem: str
    """Its stem's name (``voice-echo``)."""
    fx: VoiceFx | None = None
    """Its voice chain (tuned for its voice); None: dry."""
    level_db: float = 0.0
    """Gain after the chain, against the other speakers."""
    pan: float = 0.0
    """Balance, -1 (left) to 1 (right): the far side fades, the near side stays."""

    def stereo_gain(self) -> np.ndarray | None:
        """(left, right) gains after the chain; None when both are 1."""
        if not self.level_db and not self.pan:
            return None
        level = 10 ** (self.level_db / 20)
        return np.asarray(
            [level * (1 - max(0.0, self.pan)), level * (1 + min(0.0, self.pan))], dtype=np.float32
        )


class VoiceBus:
    """The narration placed on the timeline, mono, at a fixed speech level (segments already crest-limited).

    The level comes from the first ``VOICE_LEVEL_SAMPLE_S`` seconds of
    speech (all of it, if shorter): where a listener sets the volume, and
    known long before the last segment is synthesized, so the mix can be
    made while the voice is still speaking (``premix``). With ``fx`` (a
    ``voicefx.VoiceFx``), ``stream()`` passes the placed voice through the
    voice chain; without, it is the dry voice in both ears.

    With ``parts`` (speaker key → ``VoicePart``; segments are matched by
    ``Segment.speaker`` in lower case, the narrator's is ``""``), each speaker
    is a bus of its own: its own speech level (from its own opening), its own
    chain, then its level and pan; the voice is their sum, and
    ``VoiceStream.render_parts`` gives each (for stems). Made once every
    segment is spoken (``premix`` does not mix ahead with speakers).
    """

    def __init__(
        self,
        timeline: Timeline,
        audio: Sequence[np.ndarray],
        fx: VoiceFx | None = None,
        parts: Mapping[str, VoicePart] | None = None,
    ):
        self.parts = dict(parts) if parts is not None else None
        self._buses: dict[str, VoiceBus] = {}
        if self.parts is not None:
            # The voice runs ahead in a thread when any speaker has a chain (see mix_chunks).
            self.fx = next((p.fx for p in self.parts.values() if p.fx is not None), None)
            self.grow(timeline, audio)
            return
        sr = timeline.sample_rate
        opening = voice_opening(audio, sr)
        if opening is None:
            if not timeline.complete:
                raise ValueError(
                    "the voice's level needs its opening seconds of speech, or all of it"
                )
            opening = list(audio)
        # float64 and numpy's own summation: BLAS dot products may thread and
        # round differently from run to run, and the level must be exact.
        energy = sum(float(np.sum(np.square(a, dtype=np.float64))) for a in opening)
        count = sum(len(a) for a in opening)
        rms = float(np.sqrt(energy / count)) if count and energy > 0 else 1.0
        self.gain = np.float32(10 ** (VOICE_RMS_DB / 20) / rms)
        self.fx = fx
        self._makeup_db = 0.0
        if fx is not None:
            self._makeup_db = measure_makeup_db(fx, [a * self.gain for a in opening], sr)
        self.grow(timeline, audio)

    def grow(self, timeline: Timeline, audio: Sequence[np.ndarray]) -> None:
        """Go on with a longer timeline and more of its speech (the same before ``timeline.settled``).

        A reader in another thread may be rendering: the placed segments are
        swapped in one assignment, and it only reads settled samples.
        """
        if self.parts is not None:
            self._grow_parts(timeline, audio)
            return
        self.timeline = timeline
        known = min(len(audio), len(timeline.segments))
        self._placed = ([s.start for s in timeline.segments[:known]], list(audio[:known]))
        self.levels = LevelEnvelope.of(timeline)

    def _grow_parts(self, timeline: Timeline, audio: Sequence[np.ndarray]) -> None:
        assert self.parts is not None
        self.timeline = timeline
        known = min(len(audio), len(timeline.segments))
        mine: dict[str, list[int]] = {key: [] for key in self.parts}
        for i, segment in enumerate(timeline.segments[:known]):
            key = segment.speaker.lower()
            mine[key if key in mine else ""].append(i)
        for key, indexes in mine.items():
            if not indexes:
                continue
            own = dataclasses.replace(
                timeline, segments=tuple(timeline.segments[i] for i in indexes)
            )
            said = [audio[i] for i in indexes]
            if key in self._buses:
                self._buses[key].grow(own, said)
            else:
                self._buses[key] = VoiceBus(own, said, fx=self.parts[key].fx)
        self._placed = ([s.start for s in timeline.segments[:known]], list(audio[:known]))

    @property
    def audio(self) -> list[np.ndarray]:
        return self._placed[1]

    def stream(self) -> VoiceStream:
        """A fresh sequential reader of the voice as it sits in the mix, stereo, from sample 0."""
        return VoiceStream(self)

    def render(self, start: int, n: int) -> np.ndarray:
        """Mono voice for samples [start, start + n) (with parts: their dry sum, before level and pan)."""
        if self._buses:
            return sum((b.render(start, n) for b in self._buses.values()), np.zeros(n, np.float32))
        starts, audio = self._placed
        out = np.zeros(n, dtype=np.float32)
        first = max(0, bisect.bisect_right(starts, start) - 1)
        for i in range(first, len(starts)):
            seg_start = starts[i]
            if seg_start >= start + n:
                break
            lo, hi = max(start, seg_start), min(start + n, seg_start + len(audio[i]))
            if lo < hi:
                out[lo - start : hi - start] += (
                    audio[i][lo - seg_start : hi - seg_start] * self.gain
                )
        return out


class VoiceStream:
    """Reads the voice in order, chunk by chunk, through the voice chain if there is one."""

    def __init__(self, bus: VoiceBus):
        self._bus = bus
        self._position = 0
        self._chain = None
        self._parts: list[tuple[str, VoiceStream, np.ndarray | None]] = []
        if bus.parts is not None:
            for key, sub in bus._buses.items():
                part = bus.parts[key]
                self._parts.append((part.stem, sub.stream(), part.stereo_gain()))
            return
        if bus.fx is not None:
            self._chain = VoiceChain(
                bus.fx, bus.timeline.sample_rate, bus.render, makeup_db=bus._makeup_db
            )

    def render_parts(self, n: int) -> dict[str, np.ndarray]:
        """The next ``n`` samples of each speaker, ``(n, 2)``, by stem name (a bus with parts)."""
        out = {}
        for stem, stream, gain in self._parts:
            audio = stream.render(n)
            out[stem] = audio if gain is None else audio * gain
        self._position += n
        return out

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` samples, ``(n, 2)``."""
        if self._bus.parts is not None:
            return voice_sum(self.render_parts(n), n)
        if self._chain is not None:
            out = self._chain.render(n)
        else:
            out = np.repeat(self._bus.render(self._position, n)[:, None], 2, axis=1)
        levels = self._bus.levels
        if levels is not None:
            # After the chain: its leveler would otherwise bring a softer voice back up.
            out = out * levels.gain(self._position, n)[:, None]
        self._position += n
        return out


def voice_sum(parts: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The speakers' voices summed, in one order (the same sum for the mix and its measure)."""
    out = np.zeros((n, 2), dtype=np.float32)
    for audio in parts.values():
        out += audio
    return out


def _sampled(xs: np.ndarray, ys: np.ndarray, start: int, n: int) -> np.ndarray:
    """The piecewise-linear envelope (``xs`` ascending) at samples [start, start + n), float32.

    Most chunks lie inside one flat stretch (ducked under a sentence, open in a
    pause, one wind-down level): the breakpoints around them say so, and the
    answer is that level, exactly what interpolating every sample gives.
    """
    first = max(int(np.searchsorted(xs, start, side="right")) - 1, 0)
    last = int(np.searchsorted(xs, start + n - 1, side="left"))
    around = ys[first : last + 1]
    if n > 0 and around.min() == around.max():
        return np.full(n, around[0], dtype=np.float32)
    return np.interp(np.arange(start, start + n, dtype=np.float64), xs, ys).astype(np.float32)


class LevelEnvelope:
    """The voice's gain over time from each segment's ``level_db`` (a wind-down), linear.

    A segment's level holds from its start to the next segment's; the change
    to the next level is a ramp over the ``RAMP_S`` before that segment starts
    (less if the gap is shorter), so it falls in silence or the reverb's tail,
    and depends only on the segments around it: what a growing timeline has
    settled stays the same (``premix`` keeps further back than this).
    """

    RAMP_S = 0.4

    def __init__(self, xs: Sequence[float], ys: Sequence[float]):
        self._x = np.maximum.accumulate(np.asarray(xs, dtype=np.float64))
        self._y = np.asarray(ys, dtype=np.float64)

    @classmethod
    def of(cls, timeline: Timeline) -> LevelEnvelope | None:
        """The envelope of ``timeline``'s segments; None when every level is 0 dB."""
        segments = timeline.segments
        if not any(s.level_db for s in segments):
            return None
        ramp = cls.RAMP_S * timeline.sample_rate
        xs: list[float] = [float(segments[0].start)]
        ys: list[float] = [10 ** (segments[0].level_db / 20)]
        for before, seg in zip(segments, segments[1:]):
            if seg.level_db == before.level_db:
                continue
            xs += [max(float(before.end), seg.start - ramp), float(seg.start)]
            ys += [10 ** (before.level_db / 20), 10 ** (seg.level_db / 20)]
        return cls(xs, ys)

    def gain(self, start: int, n: int) -> np.ndarray:
        """Gain for samples [start, start + n)."""
        return _sampled(self._x, self._y, start, n)


_AUTO_TAIL_S = 30.0


def loudness_range(timeline: Timeline, scope: str = "auto") -> tuple[int, int] | None:
    """Samples [start, end) whose loudness meets the target; None for the whole track.

    ``track``: the whole track. ``speech``: first word to last word, however
    long the ambience around them. ``auto``: the whole track, but no more than
    30 s after the last word, so an ordinary track is measured whole while a
    sleep story's long ambient tail neither lowers the measurement (and with
    it raises the voice) nor has to be mixed twice.
    """
    if scope not in LOUDNESS_SCOPES:
        raise ValueError(f"loudness scope {scope!r} is not one of {', '.join(LOUDNESS_SCOPES)}")
    spoken = [s for s in timeline.segments if s.length > 0]
    if scope == "track" or not spoken:
        return None
    last = max(s.end for s in spoken)
    if scope == "speech":
        return spoken[0].start, last
    end = last + int(_AUTO_TAIL_S * timeline.sample_rate)
    return None if end >= timeline.length else (0, end)


def track_fades_s(
    lead_in_s: float, tail_s: float, fade_in_s: float | None = None, fade_out_s: float | None = None
) -> tuple[float, float]:
    """Fade-in and fade-out lengths: the given ones, else ones that stay clear of the words.

    The default fade-in lasts three quarters of the lead-in (at most 3 s) and
    the default fade-out four fifths of the tail (at least 1 s), so a track
    with default fades never fades a spoken word.
    """
    if fade_in_s is None:
        fade_in_s = min(3.0, lead_in_s * 0.75) if lead_in_s > 0 else 0.05
    if fade_out_s is None:
        fade_out_s = max(1.0, tail_s * 0.8)
    return fade_in_s, fade_out_s


def fade_gain(start: int, n: int, total: int, fade_in: int, fade_out: int) -> np.ndarray | None:
    """Track fade gain for samples [start, start + n) of a ``total``-sample track; None where it is all 1.

    Equal-power (quarter-sine) curves, exact to the sample: the fade-in is 0 at
    sample 0 and reaches 1 at sample ``fade_in``; the fade-out leaves 1 at
    ``total - 1 - fade_out`` and is exactly 0 at the last sample. Fades that
    overlap (a very short track) multiply.
    """
    if fade_in <= start and start + n <= total - 1 - fade_out:
        return None
    t = np.arange(start, start + n, dtype=np.float64)
    gain = np.ones(n)
    if fade_in > 0 and start < fade_in:
        gain *= np.sin(0.5 * np.pi * np.clip(t / fade_in, 0.0, 1.0))
    if fade_out > 0 and start + n > total - 1 - fade_out:
        gain *= np.sin(0.5 * np.pi * np.clip((total - 1 - t) / fade_out, 0.0, 1.0))
    return gain


class DuckEnvelope:
    """Ambience gain (linear) over time, from where the voice speaks."""

    def __init__(self, timeline: Timeline, ducking: Ducking = Ducking()):
        sr = timeline.sample_rate
        spans: list[list[int]] = []
        for seg in timeline.segments:
            if seg.length == 0 or seg.cue_at_s is not None:
                continue  # a breathing cue's one word must not pump the breath swell under it
            if spans and seg.start - spans[-1][1] < ducking.bridge_s * sr:
                spans[-1][1] = seg.end
            else:
                spans.append([seg.start, seg.end])
        low = 10 ** (-ducking.depth_db / 20)
        xs: list[float] = [0.0]
        ys: list[float] = [1.0]
        attack, release = ducking.attack_s * sr, ducking.release_s * sr
        for start, end in spans:
            xs += [max(start - attack, xs[-1] + 1), max(start, xs[-1] + 2), end, end + release]
            ys += [1.0, low, low, 1.0]
        self._x = np.asarray(xs, dtype=np.float64)
        self._y = np.asarray(ys, dtype=np.float64)
        # Overlapping ramps (a release cut short by the next attack) must stay monotone in x.
        self._x = np.maximum.accumulate(self._x)

    def gain(self, start: int, n: int) -> np.ndarray:
        """Gain for samples [start, start + n)."""
        return _sampled(self._x, self._y, start, n)


@dataclass
class MixChunk:
    """One chunk of the mix and its parts (for stems)."""

    start: int
    mix: np.ndarray
    """Stereo mix, ``(n, 2)``."""
    voice: np.ndarray | None
    """Stereo voice as it sits in the mix (voice chain and fades applied); None for a mix read back from its spool."""
    layers: dict[str, np.ndarray]
    """Each layer after ducking and fades, as it sits in the mix."""
    voices: dict[str, np.ndarray] | None = None
    """With speakers (and stems asked for): each speaker's voice as it sits in the mix, by stem name."""


def mix_chunks(
    timeline: Timeline,
    voice: VoiceBus | None,
    ambience: AmbienceSource | None,
    *,
    ducking: Ducking = Ducking(),
    fade_in_s: float = 3.0,
    fade_out_s: float = 6.0,
    chunk: int = CHUNK,
    keep_layers: bool = False,
) -> Iterator[MixChunk]:
    """Yield the mix chunk by chunk, from sample 0 to the end of the timeline.

    The track fades (``fade_in_s``, ``fade_out_s``; see ``fade_gain``) shape
    the whole mix, voice included. With ``keep_layers`` each chunk also
    carries every layer as it sits in the mix (for stems); their sum equals
    the ambience in the mix up to float rounding.
    """
    duck = DuckEnvelope(timeline, ducking) if voice is not None else None
    sr = timeline.sample_rate
    total = timeline.length
    fade_in = int(round(fade_in_s * sr))
    fade_out = int(round(fade_out_s * sr))
    voices: Generator[np.ndarray | dict[str, np.ndarray], None, None] | None = None
    if voice is not None:
        reader = voice.stream()
        # Each speaker apart when stems are asked for; the mix is their sum either way.
        speak = reader.render_parts if voice.parts is not None and keep_layers else reader.render
        voices = (speak(min(chunk, total - start)) for start in range(0, total, chunk))
        if voice.fx is not None:
            # The voice chain costs about as much as the whole ambience: it
            # runs a chunk or two ahead in its own thread (pedalboard and
            # scipy release the GIL), while this one renders the ambience.
            voices = _made_ahead(voices)
    try:
        yield from _mixed(timeline, voices, ambience, duck, chunk, fade_in, fade_out, keep_layers)
    finally:
        if voices is not None:
            voices.close()  # stops the voice thread when the consumer stops early


def _mixed(
    timeline, voices, ambience, duck, chunk, fade_in, fade_out, keep_layers
) -> Iterator[MixChunk]:
    total = timeline.length
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        yield mix_chunk(
            start,
            n,
            total,
            fade_in,
            fade_out,
            next(voices) if voices is not None else None,
            ambience,
            duck,
            keep_layers,
        )


def mix_chunk(
    start: int,
    n: int,
    total: int,
    fade_in: int,
    fade_out: int,
    voice_st,
    ambience,
    duck,
    keep_layers: bool,
) -> MixChunk:
    """Samples [start, start + n) of a ``total``-sample mix: the voice chunk (stereo, or None), ambience and duck envelope.

    Only the fade-out needs ``total``: a mix made while the timeline still
    grows passes a lower bound, and stops before the fade-out could begin.
    """
    fade = fade_gain(start, n, total, fade_in, fade_out)
    speakers = None
    if isinstance(voice_st, dict):  # each speaker apart, for stems
        speakers = voice_st
        voice_st = voice_sum(speakers, n)
        if fade is not None:
            speakers = {k: v * fade.astype(np.float32)[:, None] for k, v in speakers.items()}
    if voice_st is not None:
        if fade is not None:
            voice_st = voice_st * fade.astype(np.float32)[:, None]
    else:
        voice_st = np.zeros((n, 2), dtype=np.float32)
    mix = voice_st.copy()
    layers: dict[str, np.ndarray] = {}
    if ambience is not None:
        env = fade
        if duck is not None:
            env = duck.gain(start, n) if env is None else env * duck.gain(start, n)
        env = None if env is None else env.astype(np.float32)[:, None]
        rendered = ambience.render(n)
        if rendered:
            # The mix is summed the same way with or without stems, so
            # asking for stems never changes a single sample of it.
            bed = sum(rendered.values())
            mix += bed if env is None else bed * env
        if keep_layers:
            for name in ambience.names:
                stem = rendered.get(name)
                if stem is None:  # silent here
                    layers[name] = np.zeros((n, 2), dtype=np.float32)
                else:
                    layers[name] = stem if env is None else stem * env
    return MixChunk(start, mix, voice_st, layers, speakers)


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


_T = TypeVar("_T")


def _made_ahead(items: Iterator[_T], depth: int = 2) -> Generator[_T, None, None]:
    """The items of ``items``, made in a thread up to ``depth`` ahead of the consumer, in the same order.

    Closing the returned generator stops the thread; an exception in it is raised here.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(_Failed(exc))

    worker = threading.Thread(target=produce, name="meditation-voice", daemon=True)
    on_stop(worker, stop.set)
    worker.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join()
