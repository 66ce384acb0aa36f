"""Mix and measure while the voice is still speaking.

Synthesis is the slow stage, and it keeps one core busy. The measure pass
(ambience, voice chain, loudness, true peak, and the spool the final pass
reads back) needs the timeline, and the timeline needs every segment's
length. But a timeline is final up to the first segment not yet spoken
(``Timeline.settled``), and so is everything the mix takes from it up to a
margin before that: the voice, the ducking, the scenes' levels, the cues.
So this stage makes the mix on the other core, chunk by chunk, as far as
it is final each time a segment arrives; after the last one only the end
of the track is left to make.

The mix is the same, sample for sample, however the speech arrives (all at
once from the cache, or a segment at a time): chunks are made on the fixed
grid from sample 0 and only where every input to them is final, and each
stage they call gives the same samples for any chunking. ``render`` makes
every mix this way, so there is one path and one result.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ._threads import on_stop
from .measure import MeasurePass, measure_extent
from .mix import (
    CHUNK,
    DuckEnvelope,
    Ducking,
    VoiceBus,
    VoicePart,
    VoiceStream,
    loudness_range,
    mix_chunk,
    voice_opening,
)
from .progress import progress
from .soundscape import AmbiencePlan, AmbienceStream
from .timeline import Timeline
from .voicefx import VoiceFx

__all__ = ["Premix", "Premixed"]

_FAR = 1 << 62  # a range end not known yet: after anything made so far
_NICE = 10


@dataclass
class Premixed:
    """What the stage made once the last segment was in."""

    timeline: Timeline
    """The final timeline, with each scene's layers."""
    plan: AmbiencePlan | None
    """The soundscape plan, or None without a soundscape."""
    voice: VoiceBus
    measured: MeasurePass | None
    """The measure pass, fed as ``measure.measure_extent`` asks; None if it had to be given up (the master measures again)."""


class Premix:
    """The mix of a render, made and measured in a thread of its own as the speech comes in.

    Parameters
    ----------
    sample_rate : int
    place : callable
        ``place(lengths, known)`` lays the timeline out from the first
        ``known`` lengths (None: all of them, final).
    plan_soundscape : callable
        ``plan_soundscape(timeline, partial)`` returns (timeline, plan or
        None); ``partial`` while the timeline still grows.
    voice_fx : callable
        ``voice_fx(plan)``: the voice chain (``VoiceFx``) or None; the plan may be None.
    voice_parts : callable, optional
        ``voice_parts(plan)``: each speaker's ``VoicePart`` (``mix.VoiceBus``), for a script with speakers.
    fades : (float, float)
        Track fade-in and fade-out, seconds.
    scope : str
        The loudness scope (``mix.loudness_range``).
    stems : bool
        Stems are asked for: the final pass mixes again, nothing is spooled.
    grows : bool
        Whether a timeline can be laid out before every length is known
        (not when the pauses are fitted to a duration).
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        place: Callable[[Sequence[int], int | None], Timeline],
        plan_soundscape: Callable[[Timeline, bool], tuple[Timeline, AmbiencePlan | None]],
        voice_fx: Callable[[AmbiencePlan | None], VoiceFx | None],
        fades: tuple[float, float],
        voice_parts: Callable[[AmbiencePlan | None], Mapping[str, VoicePart]] | None = None,
        scope: str,
        stems: bool,
        grows: bool,
        true_peak: bool = True,
    ):
        self._sr = sample_rate
        self._place, self._plan_soundscape, self._voice_fx = place, plan_soundscape, voice_fx
        self._voice_parts = voice_parts
        self._fade_in, self._fade_out = (int(round(f * sample_rate)) for f in fades)
        self._scope, self._stems, self._grows = scope, stems, grows
        # The mix's true peak: measured here, or by the final pass (``master.mix_true_peak_first``).
        self._true_peak = true_peak
        self._ducking = Ducking()
        self._audio: list[np.ndarray] = []
        self._complete = False
        self._stopping = False
        self._cond = threading.Condition()
        self._failure: BaseException | None = None
        self._result: Premixed | None = None
        self._handled = 0  # segments the thread has made the mix with
        # Made once the voice's opening seconds are in.
        self._bus: VoiceBus | None = None
        self._reader: VoiceStream | None = None
        self._ambience: AmbienceStream | None = None
        self._measured: MeasurePass | None = None
        self._span: tuple[int, int] | None = None  # the loudness range the meter was given last
        self.position = 0
        """Samples of the mix made and measured so far."""
        self.advances = 0
        """Times the mix went on with a timeline that was still growing."""
        self.stop: int | None = None
        """Where the measure pass ends (known once the last segment is in)."""
        self._voices = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meditation-voice")
        self._thread = threading.Thread(target=self._run, name="meditation-premix", daemon=True)
        on_stop(self._thread, self._ask_to_stop)
        self._thread.start()

    def _ask_to_stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._voices.shutdown(wait=False, cancel_futures=True)

    # -- the speech stage's side ------------------------------------------------

    def add(self, audio: np.ndarray) -> None:
        """The next spoken segment, finished (in the speech stage's order)."""
        if self._failure is not None:
            raise self._failure  # no point speaking on
        with self._cond:
            self._audio.append(audio)
            self._cond.notify_all()

    def caught_up(self, timeout: float | None = None) -> bool:
        """Wait until the mix is made with every segment added so far (tests and benchmarks); False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (
                    self._handled >= len(self._audio)
                    or self._failure is not None
                    or not self._thread.is_alive()
                ),
                timeout,
            )

    def finish(self, audio: Sequence[np.ndarray]) -> Premixed:
        """Every segment is in (``audio``, all of them): make the rest, and return what was made."""
        with self._cond:
            if len(audio) != len(
                self._audio
            ):  # e.g. a speech stage that did not report each segment
                self._audio = list(audio)
            self._complete = True
            self._cond.notify_all()
        while self.stop is None and self._thread.is_alive():
            self._thread.join(0.05)  # until the end of the measure pass is known
        shown = self.position
        left = (self.stop - shown) / self._sr if self.stop is not None else None
        with progress("measure", left, "s") as bar:
            while self._thread.is_alive():
                self._thread.join(0.1)
                bar.update((self.position - shown) / self._sr)
                shown = self.position
        if self._failure is not None:
            raise self._failure
        assert self._result is not None
        result, self._result = self._result, None
        self._measured = None  # the caller owns it now
        return result

    def close(self) -> None:
        """Stop the thread and let go of everything (after an error or an interrupt, too)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()
        self._voices.shutdown(wait=True)
        if self._measured is not None:
            self._measured.close()
            self._measured = None

    def __enter__(self) -> Premix:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the thread -------------------------------------------------------------

    def _run(self) -> None:
        _give_way()
        seen = 0
        try:
            while True:
                with self._cond:
                    while not (self._stopping or self._complete or len(self._audio) > seen):
                        self._cond.wait()
                    if self._stopping:
                        return
                    audio, complete = list(self._audio), self._complete
                seen = len(audio)
                if complete:
                    self._result = self._last(audio)
                    return
                if self._grows:
                    self._advance(audio)
                with self._cond:
                    self._handled = seen
                    self._cond.notify_all()
        except BaseException as exc:  # raised on the caller's thread
            self._failure = exc
            with self._cond:
                self._cond.notify_all()

    def _advance(self, audio: list[np.ndarray]) -> None:
        """Make the mix as far as it is final, with the segments in so far."""
        timeline = self._place([len(a) for a in audio], len(audio))
        timeline, plan = self._plan_soundscape(timeline, True)
        if self._bus is None and voice_opening(audio, self._sr) is None:
            return  # the voice's level is not known yet
        until = self._final_before(timeline, plan)
        self._span = self._provisional_span(timeline, len(audio))
        self._follow(timeline, plan, audio, until)
        self._make(
            until, timeline.length
        )  # a lower bound of the length: the fade-out starts after ``until``
        self.advances += 1

    def _last(self, audio: list[np.ndarray]) -> Premixed:
        timeline = self._place([len(a) for a in audio], None)
        timeline, plan = self._plan_soundscape(timeline, False)
        total = timeline.length
        span = loudness_range(timeline, self._scope)
        spool, stop = measure_extent(total, self._sr, stems=self._stems, loudness_range=span)
        # (The meter is made with the voice bus: there is one once the voice's opening is in.)
        if self._measured is not None and not _same_within(self._span, span, self.position):
            # Never expected: what was measured so far was measured over other
            # samples than the final range. Measure again rather than be wrong.
            self._measured.close()
            self._measured = None
        self._span = span
        bus = self._follow(timeline, plan, audio, None)
        if self._measured is not None:
            if not spool:
                self._measured.drop_spool()
            self.stop = stop
            self._make(stop, total)
        return Premixed(timeline, plan, bus, self._measured)

    def _follow(
        self,
        timeline: Timeline,
        plan: AmbiencePlan | None,
        audio: Sequence[np.ndarray],
        until: int | None,
    ) -> VoiceBus:
        """Bring the voice, the ambience and the meter to the newest timeline; returns the voice bus."""
        if self._bus is None:
            parts = self._voice_parts(plan) if self._voice_parts is not None else None
            fx = self._voice_fx(plan) if parts is None else None
            self._bus = VoiceBus(timeline, audio, fx=fx, parts=parts)
            self._reader = self._bus.stream()
            self._ambience = AmbienceStream(plan, until) if plan is not None else None
            self._measured = MeasurePass(
                self._sr, self._span, spool=not self._stems, true_peak=self._true_peak
            )
        else:
            self._bus.grow(timeline, audio)
            if self._ambience is not None:
                assert plan is not None  # a track's soundscape does not go away as it grows
                self._ambience.adopt(plan, until)
            if self._measured is not None:
                self._measured.meter.span = self._span
        self._duck = DuckEnvelope(timeline, self._ducking)
        return self._bus

    def _make(self, limit: int, total: int) -> None:
        """Mix and measure chunks on the grid up to ``limit`` (a chunk may end at ``total``, the last one)."""
        measured, reader = self._measured, self._reader
        if measured is None or reader is None:  # made together, with the voice bus
            return
        ahead: list[
            Future[np.ndarray]
        ] = []  # the voice chain runs a chunk ahead in its own thread (pedalboard and scipy release the GIL)
        voice_at = self.position

        def more_voice() -> None:
            nonlocal voice_at
            while len(ahead) < 2 and voice_at < limit:
                n = min(CHUNK, total - voice_at)
                ahead.append(self._voices.submit(reader.render, n))
                voice_at += n

        more_voice()
        while self.position < limit:
            if self._stopping:
                for f in ahead:
                    f.cancel()
                return
            start = self.position
            n = min(CHUNK, total - start)
            voice = ahead.pop(0).result()
            more_voice()
            chunk = mix_chunk(
                start,
                n,
                total,
                self._fade_in,
                self._fade_out,
                voice,
                self._ambience,
                self._duck,
                False,
            )
            measured.feed(chunk.mix)
            self.position += n

    def _final_before(self, timeline: Timeline, plan: AmbiencePlan | None) -> int:
        """The chunk boundary before which the mix made from this growing timeline is final."""
        sr = self._sr
        settled = (
            timeline.length if timeline.settled is None else timeline.settled
        )  # None: all final
        d = self._ducking
        # Ducking: a segment's attack starts before it, and a short pause
        # after a segment stays ducked if the next one comes soon enough.
        edge = settled - int((d.attack_s + d.bridge_s) * sr) - 1
        if plan is not None:
            edge = min(edge, plan.final_before(settled))
        edge = min(
            edge, timeline.length - self._fade_out - 2
        )  # the track is at least this long: its fade-out is later
        return max(0, edge // CHUNK * CHUNK)

    def _provisional_span(self, timeline: Timeline, known: int) -> tuple[int, int] | None:
        """The loudness range as far as it is known: its start once the first word is, its end later than anything made."""
        if self._scope == "track" or known >= len(timeline.segments):
            return loudness_range(timeline, self._scope)  # every word placed: the range is final
        if self._scope == "speech":
            first = next((s for s in timeline.segments[:known] if s.length > 0), None)
            return (first.start, _FAR) if first is not None else (_FAR, _FAR)
        return (0, _FAR)


def _give_way() -> None:
    """Let the speech engine's thread have a core first when both want one (Linux: niceness is per thread).

    The threads this one starts (the voice chain's, the meter's) inherit it.
    The mix has all the time the speech takes; the speech is what the user waits for.
    """
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _NICE)
        except OSError:
            pass


def _same_within(a: tuple[int, int] | None, b: tuple[int, int] | None, n: int) -> bool:
    """Whether two loudness ranges take the same samples of the first ``n``."""

    def clip(span):
        lo, hi = (0, n) if span is None else (max(0, min(span[0], n)), max(0, min(span[1], n)))
        return (lo, hi) if lo < hi else (0, 0)

    return clip(a) == clip(b)
