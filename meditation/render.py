"""Compose the stages into one render: script → segments → speech → timeline
→ soundscape → mix/master → export.

Mastering makes two passes over the mix, both streamed: the first measures
integrated loudness, the second applies the gain and the true-peak limiter
and encodes. Layers are deterministic, so the second pass regenerates the
ambience rather than holding the whole track in memory.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import SpeechCache
from . import publish
from .export import AudioWriter, Metadata
from .files import check_settings_files
from .master import LoudnessMeter, TruePeakLimiter, true_peak_db
from .mix import VoiceBus, limit_crest, loudness_range, mix_chunks, track_fades_s
from .progress import progress
from .script import Script, read_script
from .settings import RenderSettings, settings_to_dict
from .speech import synthesize
from .segments import plan_segments
from .timeline import Timeline, fit_pause_scale, layout

__all__ = ["RenderResult", "render", "render_ambient", "master_to_file"]

# MP3 decoders can overshoot the encoder's input by a few tenths of a dB:
# limit lossy formats a little lower so the decoded file still meets the ceiling.
_LOSSY_MARGIN_DB = {".mp3": 0.7, ".ogg": 0.7, ".opus": 0.7, ".m4a": 0.7, ".m4b": 0.7}


@dataclass(frozen=True)
class RenderResult:
    """What a render produced and measured."""

    path: Path
    duration_s: float
    loudness_lufs: float
    true_peak_db: float
    timeline: Timeline
    settings: RenderSettings

    def summary(self) -> str:
        """The one line the CLI prints at the end."""
        minutes, seconds = divmod(int(round(self.duration_s)), 60)
        return f"{self.path}: {minutes}:{seconds:02d}, {self.loudness_lufs:.1f} LUFS, true peak {self.true_peak_db:.1f} dBTP"

    def sidecar(self) -> dict:
        """Everything needed to audit the file: settings, version, timeline, measurements."""
        from . import __version__

        return {
            "version": __version__,
            "settings": settings_to_dict(self.settings),
            "seed": self.settings.seed,
            "loudness_lufs": round(self.loudness_lufs, 2),
            "true_peak_db": round(self.true_peak_db, 2),
            "timeline": self.timeline.to_dict(),
        }


def render(settings: RenderSettings, script: Script | None = None) -> RenderResult:
    """Render one meditation to ``settings.output`` and return what was made."""
    settings = publish.beside_output(settings)
    check_settings_files(settings)
    script = script or read_script(settings.script)
    publication = publish.prepare(settings)  # cover, captions and plot paths: refused before any synthesis
    planned = plan_segments(script, rate=settings.rate)
    cache = SpeechCache() if settings.cache else None
    audio = synthesize(
        [s.text for s in planned if s.spoken], voice=settings.voice, rate=settings.rate, sample_rate=settings.sample_rate, cache=cache, finish_with=limit_crest
    )
    pause_scale = settings.pause_scale
    if settings.duration_s is not None:
        pause_scale = fit_pause_scale(
            planned,
            [len(a) for a in audio],
            sample_rate=settings.sample_rate,
            lead_in_s=settings.lead_in_s,
            tail_s=settings.tail_s,
            duration_s=settings.duration_s,
        )
    timeline = layout(
        planned,
        [len(a) for a in audio],
        sample_rate=settings.sample_rate,
        lead_in_s=settings.lead_in_s,
        tail_s=settings.tail_s,
        scene_names=[s.name for s in script.scenes],
        pause_scale=pause_scale,
    )
    ambience_factory = None
    preset_name = "none"
    voice_table = {}
    beds = _beds(settings)
    if settings.soundscape != "none" or beds:
        from .soundscape import plan_ambience

        plan = plan_ambience(settings.soundscape, script=script, timeline=timeline, seed=settings.seed, only=settings.layers, beds=beds)
        timeline = plan.timeline
        ambience_factory = plan.build
        preset_name = plan.preset.name
        voice_table = plan.preset.voice
    voice = VoiceBus(timeline, audio, fx=_voice_fx(settings, voice_table))
    fade_in, fade_out = track_fades_s(settings.lead_in_s, settings.tail_s, settings.fade_in_s, settings.fade_out_s)
    scope = loudness_range(timeline, settings.loudness_scope)

    def chunks(keep_layers: bool):
        ambience = ambience_factory() if ambience_factory else None
        return mix_chunks(timeline, voice, ambience, fade_in_s=fade_in, fade_out_s=fade_out, keep_layers=keep_layers)

    title = settings.title or script.title
    tags = publish.metadata(publication, settings, title=title, timeline=timeline, soundscape=preset_name)
    loudness, peak = master_to_file(
        chunks, settings, title=title, total=timeline.length, stems=settings.stems, metadata=tags, loudness_range=scope
    )
    publish.finish(settings, timeline, voice=audio, title=title)
    return RenderResult(settings.output, timeline.duration_s, loudness, peak, timeline, settings)


def render_ambient(settings: RenderSettings, duration_s: float) -> RenderResult:
    """Render ambience alone for ``duration_s`` (e.g. an 8-hour sleep track)."""
    settings = publish.beside_output(settings)
    check_settings_files(settings)
    from .soundscape import plan_ambience
    from .timeline import SceneSpan

    length = int(round(duration_s * settings.sample_rate))
    bare = Timeline(settings.sample_rate, length, (), (SceneSpan("", 0, length),))
    preset = "default" if settings.soundscape in ("auto", "none") else settings.soundscape
    publication = publish.prepare(settings)
    beds = _beds(settings)
    if settings.soundscape == "none" and beds:
        preset = "none"
    plan = plan_ambience(preset, script=None, timeline=bare, seed=settings.seed, only=settings.layers, beds=beds)
    fade = min(10.0, duration_s / 4)
    fade_in = fade if settings.fade_in_s is None else settings.fade_in_s
    fade_out = fade if settings.fade_out_s is None else settings.fade_out_s

    def chunks(keep_layers: bool):
        return mix_chunks(plan.timeline, None, plan.build(), fade_in_s=fade_in, fade_out_s=fade_out, keep_layers=keep_layers)

    title = settings.title or "Ambience"
    tags = publish.metadata(publication, settings, title=title, timeline=None, soundscape=plan.preset.name)
    loudness, peak = master_to_file(chunks, settings, title=title, total=length, stems=settings.stems, voice=False, metadata=tags)
    if settings.plot is not None:
        publish.finish(settings, plan.timeline, voice=None, title=title)
    return RenderResult(settings.output, duration_s, loudness, peak, plan.timeline, settings)


def master_to_file(
    chunks,
    settings: RenderSettings,
    *,
    title: str,
    total: int,
    stems: Path | None = None,
    voice: bool = True,
    metadata: Metadata | None = None,
    loudness_range: tuple[int, int] | None = None,
) -> tuple[float, float]:
    """Measure, normalize, limit and encode the mix; returns (loudness LUFS, true peak dBTP) of the output.

    ``chunks(keep_layers)`` must start a fresh, identical stream of MixChunks
    each time it is called. ``loudness_range`` (samples [start, end)) is the
    part whose loudness meets the target and is reported; None means the
    whole track.
    """
    sr = settings.sample_rate
    meter = _RangeMeter(sr, loudness_range)
    # Short tracks keep the measured mix in a temporary file, so the later
    # passes read it back instead of synthesizing and mixing it again; long
    # ones (hours of ambience) regenerate it, keeping disk use bounded.
    spool = tempfile.TemporaryFile(prefix="meditation-mix-") if stems is None and total <= _SPOOL_MAX_S * sr else None
    # Without a spool to fill, measuring stops where the measured range ends:
    # a long ambient tail is mixed once, in the final pass, not twice.
    stop = total if spool is not None or loudness_range is None else min(total, loudness_range[1])
    with progress("measure", stop / sr, "s") as bar:
        for chunk in chunks(False):
            meter.feed(chunk.mix)
            if spool is not None:
                spool.write(np.ascontiguousarray(chunk.mix, dtype=np.float32).tobytes())
            bar.update(len(chunk.mix) / sr)
            if chunk.start + len(chunk.mix) >= stop:
                break
    measured = meter.integrated_lufs()
    if spool is None:
        return _normalize_limit_encode(chunks, settings, metadata or Metadata(title=title, artist=settings.artist), stems, measured, total, voice, loudness_range)
    with spool:
        return _normalize_limit_encode(
            _replay(spool, total), settings, metadata or Metadata(title=title, artist=settings.artist), stems, measured, total, voice, loudness_range
        )


class _RangeMeter:
    """A LoudnessMeter that hears only samples [start, end) of the stream it is fed."""

    def __init__(self, sample_rate: int, span: tuple[int, int] | None):
        self._meter = LoudnessMeter(sample_rate)
        self._span = span
        self._position = 0

    def feed(self, block: np.ndarray) -> None:
        start = self._position
        self._position += len(block)
        if self._span is None:
            self._meter.feed(block)
            return
        lo, hi = max(start, self._span[0]), min(self._position, self._span[1])
        if lo < hi:
            self._meter.feed(block[lo - start : hi - start])

    def integrated_lufs(self) -> float:
        return self._meter.integrated_lufs()


def _beds(settings: RenderSettings) -> list[tuple[str, float]]:
    """The ``--bed`` recording as (path, level_db) pairs (``validate`` split FILE:LEVEL_DB and checked the file)."""
    return [(str(settings.bed), settings.bed_level_db)] if settings.bed is not None else []


def _voice_fx(settings: RenderSettings, preset_table):
    from .voicefx import parse_voice_fx

    return parse_voice_fx(settings.voice_fx, preset_table)


def _normalize_limit_encode(chunks, settings, metadata, stems, measured, total, voice, loudness_range=None) -> tuple[float, float]:
    target = settings.loudness_lufs
    gain = 1.0 if not np.isfinite(measured) else 10 ** ((target - measured) / 20)
    # The limiter shaves peaks and with them some loudness. Usually that
    # stays within tolerance; when it does not (speech-sparse tracks need
    # their speech loud), correct the gain with limited trial passes that
    # are measured but not encoded, then encode once more.
    loudness, peak, committed = _final(chunks, settings, metadata, stems, gain, total, voice, commit_if=target, loudness_range=loudness_range)
    if committed:
        return loudness, peak
    for _ in range(_MAX_TRIALS):
        gain *= 10 ** ((target - loudness) / 20)
        loudness, _ = _limit_and_encode(chunks, None, settings, gain, total, voice=voice, loudness_range=loudness_range)
        if abs(loudness - target) <= _LOUDNESS_TOLERANCE_LU:
            break
    gain *= 10 ** ((target - loudness) / 20)
    loudness, peak, _ = _final(chunks, settings, metadata, stems, gain, total, voice, loudness_range=loudness_range)
    return loudness, peak


_SPOOL_MAX_S = 30 * 60


def _replay(spool, total: int):
    """A ``chunks`` function that reads the spooled mix back, chunk by chunk."""
    from .mix import CHUNK, MixChunk

    def chunks(keep_layers: bool):
        spool.seek(0)
        for start in range(0, total, CHUNK):
            n = min(CHUNK, total - start)
            mix = np.frombuffer(spool.read(n * 8), dtype=np.float32).reshape(n, 2)
            yield MixChunk(start, mix, None, {})

    return chunks


def _final(chunks, settings, metadata, stems, gain, total, voice, commit_if: float | None = None, loudness_range=None) -> tuple[float, float, bool]:
    """A pass that writes the files; with ``commit_if``, kept only when the loudness is within tolerance of it."""
    writers = _Writers(settings, metadata, stems)
    try:
        loudness, peak = _limit_and_encode(chunks, writers, settings, gain, total, voice=voice, loudness_range=loudness_range)
    except BaseException:
        writers.discard()
        raise
    if commit_if is not None and np.isfinite(loudness) and abs(loudness - commit_if) > _LOUDNESS_TOLERANCE_LU:
        writers.discard()
        return loudness, peak, False
    writers.commit()
    return loudness, peak, True


_MAX_TRIALS = 3


_LOUDNESS_TOLERANCE_LU = 0.4


class _Writers:
    """The output file and, if asked, one stem file per part; committed or discarded together."""

    def __init__(self, settings: RenderSettings, metadata: Metadata, stems: Path | None):
        self.main = AudioWriter(settings.output, sample_rate=settings.sample_rate, metadata=metadata)
        self.folder = stems
        self.stems: dict[str, AudioWriter] = {}
        self.sample_rate = settings.sample_rate
        if stems is not None:
            stems.mkdir(parents=True, exist_ok=True)

    def write_stems(self, chunk, gain: float, *, voice: bool = True) -> None:
        parts = {"voice": chunk.voice, **chunk.layers} if voice else chunk.layers
        for name, audio in parts.items():
            if name not in self.stems:
                self.stems[name] = AudioWriter(self.folder / f"{name}.wav", sample_rate=self.sample_rate)
            self.stems[name].write(audio * np.float32(gain))

    def commit(self) -> None:
        for w in self.stems.values():
            w.commit()
        self.main.commit()

    def discard(self) -> None:
        self.main._discard()
        for w in self.stems.values():
            w._discard()


def _limit_and_encode(
    chunks, writers: _Writers, settings: RenderSettings, gain: float, total: int, *, voice: bool, loudness_range=None
) -> tuple[float, float]:
    sr = settings.sample_rate
    margin = _LOSSY_MARGIN_DB.get(settings.output.suffix.lower(), 0.0)
    limiter = TruePeakLimiter(sr, ceiling_db=settings.true_peak_db - margin)
    meter = _RangeMeter(sr, loudness_range)
    peak = -np.inf

    def emit(block: np.ndarray) -> None:
        nonlocal peak
        if len(block):
            if writers is not None:
                writers.main.write(block)
                # A block whose samples stay 6 dB under the peak so far cannot raise it.
                if 20 * np.log10(float(np.abs(block).max()) + 1e-20) + 6.0 > peak:
                    peak = max(peak, true_peak_db(block))
            meter.feed(block)

    keep = writers is not None and writers.folder is not None
    with progress("master", total / sr, "s") as bar:
        for chunk in chunks(keep):
            if keep:
                writers.write_stems(chunk, gain, voice=voice)
            emit(limiter.process(chunk.mix * np.float32(gain)))
            bar.update(len(chunk.mix) / sr)
        emit(limiter.flush())
    return meter.integrated_lufs(), float(peak)
