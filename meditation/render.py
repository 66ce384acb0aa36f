"""Compose the stages into one render: script → segments → speech → timeline
→ soundscape → mix → master (loudness, limiter, export).

Each stage lives in its own module; this file only calls them in order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import __version__, publish
from .cache import SpeechCache
from .errors import SettingsError
from .files import all_or_nothing
from .lexicon import script_lexicon
from .master import Mastered, master_to_file, mix_true_peak_first
from .mix import VoiceBus, VoicePart, limit_crest, loudness_range, mix_chunks, track_fades_s
from .pace import DEFAULT_WPM, FALLBACK_RATE, Pace, base_pace, refine_pace, slowed
from .preflight import check_outputs, check_schedule
from .premix import Premix
from .progress import clock
from .script import Script, read_script
from .segments import plan_segments
from .settings import RenderSettings, breath_cue_words, preset_name, settings_to_dict
from .soundscape import (
    AmbiencePlan,
    AmbienceStream,
    check_scene_names,
    load_preset,
    plan_ambience,
)
from .soundscape.combine import Together
from .soundscape.preset import Preset
from .soundscape.schedule import NightPlan, plan_night
from .soundscape.words import choose
from .speakers import Speaker, parse_speakers, stem_name
from .speech import synthesize
from .timeline import SceneSpan, Timeline, fit_pause_scale, layout
from .vary import delay_cues, vary_script
from .voicefx import parse_voice_fx
from .voices import ENGINES, resolve_voice
from .winddown import WindDown, parse_wind_down, wind_down

__all__ = ["RenderResult", "render", "render_ambient", "script_pace", "lines_pace"]


@dataclass(frozen=True)
class RenderResult:
    """What a render produced and measured."""

    path: Path
    duration_s: float
    loudness_lufs: float
    true_peak_db: float
    timeline: Timeline
    settings: RenderSettings
    warnings: tuple[str, ...] = ()
    """One line each for the user, e.g. a loudness target the ceiling puts out of reach."""
    pace: Pace | None = None
    """The pace the voice spoke at (the settings record the pace as given: none, a rate or wpm)."""

    @classmethod
    def of(
        cls,
        settings: RenderSettings,
        timeline: Timeline,
        mastered: Mastered,
        duration_s: float | None = None,
        warnings: tuple[str, ...] = (),
    ) -> RenderResult:
        """The result of mastering ``timeline`` into ``settings.output``."""
        return cls(
            settings.output,
            timeline.duration_s if duration_s is None else duration_s,
            mastered.loudness_lufs,
            mastered.true_peak_db,
            timeline,
            settings,
            (*mastered.warnings, *warnings),
        )

    def summary(self) -> str:
        """The one line the CLI prints at the end."""
        return f"{self.path}: {clock(self.duration_s)}, {self.loudness_lufs:.1f} LUFS, true peak {self.true_peak_db:.1f} dBTP"

    def sidecar(self) -> dict:
        """Everything needed to audit the file: settings, version, timeline, measurements."""
        return {
            "version": __version__,
            "settings": settings_to_dict(self.settings),
            "seed": self.settings.seed,
            "loudness_lufs": round(self.loudness_lufs, 2),
            "true_peak_db": round(self.true_peak_db, 2),
            "warnings": list(self.warnings),
            **({"pace": dataclasses.asdict(self.pace)} if self.pace is not None else {}),
            "timeline": self.timeline.to_dict(),
        }


def render(settings: RenderSettings, script: Script | None = None) -> RenderResult:
    """Render one meditation to ``settings.output`` and return what was made.

    All its files (audio, stems, captions, timings, plot) appear together or
    not at all: a failure at any point leaves none of them
    (``files.all_or_nothing``).
    """
    with all_or_nothing(force=settings.force):
        return _render(settings, script)


def render_ambient(settings: RenderSettings, duration_s: float) -> RenderResult:
    """Render ambience alone for ``duration_s`` (e.g. an 8-hour sleep track); all its files or none."""
    with all_or_nothing(force=settings.force):
        return _render_ambient(settings, duration_s)


def _render(settings: RenderSettings, script: Script | None) -> RenderResult:
    # Outputs, cover, captions and plot paths: refused before any synthesis.
    checked = check_outputs(settings)
    settings, publication = checked.settings, checked.publication
    script = script or read_script(settings.script)
    # [either ...] lines chosen and, with --vary, breathing counts varied (issue 22).
    script = vary_script(script, seed=settings.seed, vary=settings.vary is not None)
    # Bad entries (the soundscape preset's too) refused before any synthesis.
    lexicon = script_lexicon(script, settings.lexicon, preset=_preset_lexicon(settings, script))
    cue_words = breath_cue_words(settings.breath_cues)
    pace = script_pace(script, settings, cue_words, lexicon)  # before any speech
    # Each speaker's pace for its own voice on its own words (from the settings as given).
    speakers, paces = _paced_speakers(script, settings, cue_words, lexicon)
    paces[""] = pace
    settings = settings.replace(rate=pace.rate)
    wind = _wind_down_of(settings, script)
    # Long sentences are split by their length at the slowest rate they will be spoken at.
    slowest = pace.rate * min(1.0, *wind.rate) if wind is not None else pace.rate
    planned = plan_segments(script, rate=slowest, cue_words=cue_words)
    planned = wind_down(planned, pace.rate, wind)  # each segment's rate, level and pauses
    planned = _segment_paces(planned, pace.rate, resolve_voice(settings.voice), speakers, paces)
    fades = track_fades_s(
        settings.lead_in_s, settings.tail_s, settings.fade_in_s, settings.fade_out_s
    )
    # The mix is made and measured as the speech comes in (see ``premix``).
    with _premix(script, planned, settings, fades, speakers) as premix:
        audio = _speak(
            planned, settings, each=premix.add, lexicon=lexicon, speakers=speakers, paces=paces
        )
        made = premix.finish(audio)
    timeline, voice = made.timeline, made.voice
    chunks = _mixer(timeline, voice, made.plan, *fades)
    title = settings.title or script.title
    try:
        tags = publish.metadata(
            publication,
            settings,
            title=title,
            timeline=timeline,
            soundscape=made.plan.preset.name if made.plan is not None else "none",
        )
        mastered = master_to_file(
            chunks,
            settings,
            title=title,
            total=timeline.length,
            stems=settings.stems,
            metadata=tags,
            loudness_range=loudness_range(timeline, settings.loudness_scope),
            measured=made.measured,
        )
    finally:
        if made.measured is not None:
            made.measured.close()  # the spool goes now, whatever happened
    publish.finish(settings, timeline, voice=audio, title=title)
    unmatched = (
        check_scene_names(made.plan.preset, [scene.name for scene in script.scenes])
        if made.plan is not None
        else None
    )
    result = RenderResult.of(
        settings, timeline, mastered, warnings=(unmatched,) if unmatched else ()
    )
    return dataclasses.replace(result, pace=pace)


def _render_ambient(settings: RenderSettings, duration_s: float) -> RenderResult:
    if settings.soundscape == "none" and settings.bed is None and settings.schedule is None:
        # Not the default soundscape in its place: the user asked for no soundscape.
        raise SettingsError("ambient: --soundscape none and no --bed: nothing to play")
    schedule = settings.schedule
    schedule_files = [Path(schedule)] if schedule and schedule.lower().endswith(".toml") else []
    checked = check_outputs(settings, inputs=schedule_files)
    settings, publication = checked.settings, checked.publication

    length = int(round(duration_s * settings.sample_rate))
    bare = Timeline(settings.sample_rate, length, (), (SceneSpan("", 0, length),))
    preset = "default" if settings.soundscape in ("auto", "none") else settings.soundscape
    beds = _beds(settings)
    if settings.soundscape == "none" and beds:
        preset = "none"
    plan: AmbiencePlan | NightPlan
    night_schedule = check_schedule(settings)  # also refuses --wake without a schedule
    if night_schedule is not None:  # a night in movements (issue 22)
        night = plan_night(
            night_schedule,
            timeline=bare,
            seed=settings.seed,
            beds=beds,
            crossfade_s=settings.crossfade_s,
            wake_s=settings.wake_s,
        )
        plan, soundscape = night, night.name
    else:
        ambience = plan_ambience(
            preset, script=None, timeline=bare, seed=settings.seed, only=settings.layers, beds=beds
        )
        if settings.vary is not None:
            ambience = delay_cues(ambience, settings.seed)
        plan, soundscape = ambience, ambience.preset.name
    fade = min(10.0, duration_s / 4)
    fade_in = fade if settings.fade_in_s is None else settings.fade_in_s
    fade_out = fade if settings.fade_out_s is None else settings.fade_out_s
    chunks = _mixer(plan.timeline, None, plan, fade_in, fade_out)
    title = settings.title or "Ambience"
    tags = publish.metadata(
        publication,
        settings,
        title=title,
        # A night in movements has a chapter per place.
        timeline=plan.timeline if settings.schedule is not None else None,
        soundscape=soundscape,
        spoken=False,
    )
    mastered = master_to_file(
        chunks,
        settings,
        title=title,
        total=length,
        stems=settings.stems,
        voice=False,
        metadata=tags,
    )
    if settings.plot is not None:
        publish.finish(settings, plan.timeline, voice=None, title=title)
    return RenderResult.of(settings, plan.timeline, mastered, duration_s)


def _premix(
    script: Script,
    planned,
    settings: RenderSettings,
    fades: tuple[float, float],
    speakers: dict[str, Speaker] | None = None,
) -> Premix:
    """Stages 4 to 6 and the measure pass, in a thread that follows the speech stage."""
    soundscape = choose(settings.soundscape, script, settings.words)  # the words read once
    used = _speakers_used(planned, speakers or {})
    return Premix(
        sample_rate=settings.sample_rate,
        place=lambda lengths, known: _place(script, planned, lengths, settings, known),
        plan_soundscape=lambda timeline, partial: _plan_soundscape(
            script, timeline, settings, partial, soundscape
        ),
        voice_fx=lambda plan: _voice_fx(settings, plan.preset.voice if plan is not None else {}),
        voice_parts=(
            None
            if used is None
            else lambda plan: _voice_parts(
                settings, used, plan.preset.voice if plan is not None else {}
            )
        ),
        fades=fades,
        scope=settings.loudness_scope,
        stems=settings.stems is not None,
        true_peak=mix_true_peak_first(settings.output),
        # Each speaker's level comes from its own opening: with speakers, the mix is made at the end.
        grows=settings.duration_s is None and used is None,
    )


def _speakers(script: Script, settings: RenderSettings) -> dict[str, Speaker]:
    """The speakers by lower-case name: the script's, as the settings (merged, resolved) give them."""
    table = {s.key: s for s in script.speakers}
    if settings.speakers is not None:
        table.update({s.key: s for s in parse_speakers(settings.speakers)})
    # engine:name, as the cache key and the voice tuning know it
    return {k: dataclasses.replace(s, voice=resolve_voice(s.voice)) for k, s in table.items()}


def _paced_speakers(
    script: Script, settings: RenderSettings, cue_words, lexicon
) -> tuple[dict[str, Speaker], dict[str, Pace]]:
    """The speakers, each without a rate of its own paced for its voice on its own words as the
    narrator is (``script_pace``: a pace is calibrated per voice), and their paces by key."""
    speakers = _speakers(script, settings)
    paces: dict[str, Pace] = {}
    for key, speaker in speakers.items():
        if speaker.rate is not None:
            continue
        if not any(_says(s, key) and s.spoken for s in plan_segments(script, rate=FALLBACK_RATE)):
            continue
        pace = script_pace(
            script, settings.replace(voice=speaker.voice), cue_words, lexicon, speaker=key
        )
        speakers[key] = dataclasses.replace(speaker, rate=pace.rate)
        paces[key] = pace
    return speakers, paces


def _segment_paces(
    planned, base_rate: float, voice: str, speakers: dict[str, Speaker], paces: dict[str, Pace]
) -> list:
    """Each spoken segment's rate and phrase break: its speaker's pace (the narrator's as ``""``;
    a speaker's own rate as given), slowed by the wind-down's factor there (a segment's rate
    over ``base_rate``) as ``pace.slowed`` says: rate to the voice's floor, then phrase breaks."""
    out = []
    for segment in planned:
        if not segment.spoken:
            out.append(segment)
            continue
        key = segment.speaker.lower()
        speaker = speakers.get(key)
        if speaker is None:
            own, said_by = paces[""], voice
        else:
            own = paces.get(key) or Pace(speaker.rate if speaker.rate is not None else base_rate)
            said_by = speaker.voice
        factor = 1.0 if segment.rate is None else segment.rate / base_rate
        pace = slowed(said_by, segment.text, own, factor)
        out.append(dataclasses.replace(segment, rate=pace.rate, phrase_break_s=pace.phrase_break_s))
    return out


def _speakers_used(
    planned, speakers: dict[str, Speaker]
) -> list[tuple[str, Speaker | None]] | None:
    """The speakers who say something, in order of first words (the narrator as ``""``, None);
    None when the narrator says everything (one voice, as before speakers)."""
    used: dict[str, Speaker | None] = {}
    for segment in planned:
        if segment.spoken:
            key = segment.speaker.lower()
            used.setdefault(key if key in speakers else "", speakers.get(key))
    if set(used) <= {""}:
        return None
    return list(used.items())


def _voice_parts(
    settings: RenderSettings, used: list[tuple[str, Speaker | None]], preset_table
) -> dict[str, VoicePart]:
    """Each speaker's part of the voice bus: its chain (tuned for its voice), level, pan and stem."""
    parts = {}
    for key, speaker in used:
        if speaker is None:
            parts[key] = VoicePart(stem_name(""), _voice_fx(settings, preset_table))
            continue
        fx = parse_voice_fx(speaker.chain or settings.voice_fx, preset_table, voice=speaker.voice)
        parts[key] = VoicePart(stem_name(speaker.name), fx, speaker.level_db, speaker.pan)
    return parts


def _speak(
    planned, settings: RenderSettings, each=None, lexicon=None, speakers=None, paces=None
) -> list:
    """Stage: every spoken segment synthesized, trimmed, resampled and crest-limited (silent plan entries skipped).

    ``paces``: each speaker's (the narrator's as ``""``) as ``script_pace`` chose it; a segment's
    own rate (a wind-down's) replaces the pace's rate. Default: ``settings.rate``, whole sentences.

    Each speaker's segments are spoken with its voice and rate, speaker by
    speaker (a voice is loaded once); ``each`` still gets them in the
    script's order, as soon as all before them are in.
    """
    cache = SpeechCache() if settings.cache else None
    spoken = [s for s in planned if s.spoken]
    speakers = speakers or {}
    paces = paces or {}
    fallback = Pace(settings.rate if settings.rate is not None else FALLBACK_RATE)
    groups: dict[str, list[int]] = {}
    for i, segment in enumerate(spoken):
        key = segment.speaker.lower()
        groups.setdefault(key if key in speakers else "", []).append(i)
    results: list = [None] * len(spoken)
    told = 0

    def placed(indexes: list[int]):
        where = iter(indexes)

        def put(audio) -> None:
            nonlocal told
            results[next(where)] = audio
            while each is not None and told < len(results) and results[told] is not None:
                each(results[told])
                told += 1

        return put

    for key, indexes in groups.items():
        speaker = speakers.get(key)
        pace = paces.get(key, fallback)
        said = synthesize(
            [spoken[i].text for i in indexes],
            voice=speaker.voice if speaker is not None else settings.voice,
            rate=[pace.rate if spoken[i].rate is None else spoken[i].rate for i in indexes],
            phrase_break_s=[
                pace.phrase_break_s if spoken[i].rate is None else spoken[i].phrase_break_s
                for i in indexes
            ],
            sample_rate=settings.sample_rate,
            cache=cache,
            finish_with=limit_crest,
            each=placed(indexes),
            lexicon=lexicon,
            jobs=settings.speech_jobs,
        )
        for i, audio in zip(indexes, said):
            results[i] = audio
    return results


def _wind_down_of(settings: RenderSettings, script: Script) -> WindDown | None:
    """The wind-down asked for: the settings' (command line, front matter, manifest), else the preset's."""
    if settings.wind_down is not None:
        return parse_wind_down(settings.wind_down)
    preset = _named_preset(settings, script)
    return preset.wind_down if preset is not None else None


def script_pace(
    script: Script, settings: RenderSettings, cue_words, lexicon=None, *, speaker: str | None = None
) -> Pace:
    """The script's base pace for its voice (``pace.base_pace``), checked by speaking its start.

    ``wpm`` or ``rate`` as given; neither: ``DEFAULT_WPM`` for a neural voice.
    A pace (asked or the default) is checked by speaking the script's start
    (``refine_pace``): the model alone put joe's default at 147 wpm on a
    held-out script, the probe at 135. The probe speaks through the cache.
    """
    voice_id = resolve_voice(settings.voice)
    neural = _neural(voice_id)
    if settings.wpm is None and (settings.rate is not None or not neural):
        return base_pace(voice_id, [], rate=settings.rate, neural=neural)

    def texts(rate: float) -> list[str]:
        planned = plan_segments(script, rate=rate, cue_words=cue_words)
        return [s.text for s in planned if s.spoken and _says(s, speaker)]

    wpm = settings.wpm if settings.wpm is not None else DEFAULT_WPM
    pace = base_pace(voice_id, texts(FALLBACK_RATE), wpm=settings.wpm)
    # Long sentences split by their length at the rate: probe the segments it will speak.
    return refine_pace(
        pace,
        voice_id,
        texts(pace.rate),
        lambda probe, p: _speech_seconds(probe, voice_id, p, settings, lexicon),
        wpm=wpm,
        strict=settings.wpm is not None,
    )


def _says(segment, speaker: str | None) -> bool:
    """Whether ``segment`` is ``speaker``'s (a key; None: anyone's)."""
    return speaker is None or segment.speaker.lower() == speaker


def lines_pace(settings: RenderSettings, lines) -> Pace:
    """The base pace of a few short lines (a timer's opening and closing), without a probe."""
    voice_id = resolve_voice(settings.voice)
    return base_pace(
        voice_id, lines, rate=settings.rate, wpm=settings.wpm, neural=_neural(voice_id)
    )


def _preset_lexicon(settings: RenderSettings, script: Script) -> tuple:
    """The ``[lexicon]`` entries of the soundscape preset this render plays (none: none)."""
    preset = _named_preset(settings, script)
    return preset.lexicon if preset is not None else ()


def _named_preset(settings: RenderSettings, script: Script) -> Preset | None:
    """The preset file a render plays, for its own tables (``[wind-down]``, ``[lexicon]``); None
    for none and for ``auto``, whose places the words choose carry no such tables."""
    name = preset_name(settings, script)
    return None if name is None or name == "auto" else load_preset(name)


def _neural(voice_id: str) -> bool:
    engine, _, name = voice_id.partition(":")
    return engine in ENGINES and ENGINES[engine].describe(name).neural


def _speech_seconds(texts, voice: str, pace: Pace, settings: RenderSettings, lexicon=None) -> float:
    """Seconds of speech in ``texts`` as the speech stage would place them (trimmed).

    Spoken through the render's cache at its sample rate: when the probe's pace
    is the one chosen, the render finds these segments already spoken.
    """
    audio = synthesize(
        texts,
        voice=voice,
        rate=pace.rate,
        sample_rate=settings.sample_rate,
        cache=SpeechCache() if settings.cache else None,
        lexicon=lexicon,
        phrase_break_s=pace.phrase_break_s,
        jobs=settings.speech_jobs,
    )
    return sum(len(a) for a in audio) / settings.sample_rate


def _place(
    script: Script, planned, lengths, settings: RenderSettings, known: int | None = None
) -> Timeline:
    """Stage: the timeline, pauses scaled by ``pause_scale`` or to fit ``duration_s`` (``known``: see ``layout``)."""
    pause_scale = settings.pause_scale
    if settings.duration_s is not None:
        assert known is None, "pauses fitted to a duration need every length"
        pause_scale = fit_pause_scale(
            planned,
            lengths,
            sample_rate=settings.sample_rate,
            lead_in_s=settings.lead_in_s,
            tail_s=settings.tail_s,
            duration_s=settings.duration_s,
        )
    return layout(
        planned,
        lengths,
        sample_rate=settings.sample_rate,
        lead_in_s=settings.lead_in_s,
        tail_s=settings.tail_s,
        scene_names=[s.name for s in script.scenes],
        pause_scale=pause_scale,
        known=known,
    )


def _plan_soundscape(
    script: Script,
    timeline: Timeline,
    settings: RenderSettings,
    partial: bool = False,
    soundscape: str | Preset | None = None,
):
    """Stage: the soundscape (and ``--bed``) over the timeline.

    Returns (the timeline with each scene's layers, the plan or None).
    """
    beds = _beds(settings)
    if settings.soundscape == "none" and not beds:
        return timeline, None

    plan = plan_ambience(
        settings.soundscape if soundscape is None else soundscape,
        script=script,
        timeline=timeline,
        seed=settings.seed,
        only=settings.layers,
        beds=beds,
        partial=partial,
    )
    if settings.vary is not None:
        plan = delay_cues(plan, settings.seed)
    return plan.timeline, plan


def _mixer(
    timeline: Timeline,
    voice: VoiceBus | None,
    plan: AmbiencePlan | NightPlan | None,
    fade_in_s: float,
    fade_out_s: float,
):
    """Stage: a function that starts a fresh stream of the mix (the master makes more than one pass)."""

    def chunks(keep_layers: bool):
        ambience: Together | AmbienceStream | None
        if isinstance(plan, NightPlan):
            ambience = plan.stream()  # a night in movements: its places side by side
        else:
            ambience = AmbienceStream(plan) if plan is not None else None
        return mix_chunks(
            timeline,
            voice,
            ambience,
            fade_in_s=fade_in_s,
            fade_out_s=fade_out_s,
            keep_layers=keep_layers,
        )

    return chunks


def _beds(settings: RenderSettings) -> list[tuple[str, float]]:
    """The ``--bed`` recording as (path, level_db) pairs (``validate`` split FILE:LEVEL_DB and checked the file)."""
    return [(str(settings.bed), settings.bed_level_db)] if settings.bed is not None else []


def _voice_fx(settings: RenderSettings, preset_table):
    return parse_voice_fx(settings.voice_fx, preset_table, voice=settings.voice)
