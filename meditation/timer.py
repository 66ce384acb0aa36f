"""A timer session: a silent or ambient sit between bells (``meditation timer 20m``).

The sit is planned to the sample: an opening bell (after an optional spoken
opening line), a bell at each interval (``--interval``) or at given times
(``--at``), and a closing bell of ``closing_strikes`` strikes, then an
optional spoken closing line. A chapter starts at every bell. Under it an
optional soundscape preset or bed plays; it dips under each strike and comes
back as the bell fades, so a strike is heard clearly over a loud bed.

The bells are the ``bell`` layer (modal singing-bowl synthesis) with three
tunings; they are streamed beside the soundscape's own layers and mixed,
mastered and published like every other track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import publish
from .cache import SpeechCache
from .errors import SettingsError
from .master import master_to_file
from .mix import VoiceBus, limit_crest, mix_chunks
from .preflight import check_outputs
from .render import RenderResult, lines_pace
from .segments import Segment
from .settings import RenderSettings
from .soundscape import AmbienceStream, load_preset, plan_ambience
from .soundscape.combine import StruckBell, Together, layer_levels
from .soundscape.layers.bell import Bell
from .speech import synthesize
from .timeline import LayerLevels, SceneSpan, Timeline
from .voicefx import parse_voice_fx

__all__ = ["BELL_SOUNDS", "TimerPlan", "plan_timer", "check_timer", "render_timer"]

BELL_SOUNDS: dict[str, dict[str, float]] = {
    # The bell layer's own tuning: a mid singing bowl.
    "bowl": {},
    # A large temple bell: low, long, a slow beat.
    "bell": {
        "fundamental_hz": 131.0,
        "decay_s": 18.0,
        "brightness": 0.65,
        "wobble_hz": 0.4,
        "mallet_ms": 2.5,
    },
    # A small high bell: short and bright, it does not ring into the next minute.
    "chime": {
        "fundamental_hz": 1047.0,
        "decay_s": 5.0,
        "brightness": 0.8,
        "wobble_hz": 0.2,
        "mallet_ms": 1.0,
    },
}
"""``--bell`` choices: the bell layer's parameters for each sound."""

BELL_LEVEL_DB = -10.0
"""The bells' level relative to the narration, as the dream's waking bell."""
_LEAD_S = 2.0
"""Silence before the first sound: a player's own fade-in never swallows the opening bell."""
_SPOKEN_GAP_S = 3.0
"""Between the opening line and the opening bell, and the last strike and the closing line."""
_STRIKE_SPACING_S = 5.0
"""Between the closing bell's strikes: each is heard on its own, the last still ringing."""
_END_AFTER_VOICE_S = 6.0
"""After the closing line: the room settles before the track ends."""
_FADE_IN_S = 1.5
_FADE_OUT_S = 4.0
_MAX_LINE_CHARS = 600
"""A spoken line is one or two sentences; a script is the place for more."""
# The bed's dip under a strike: down over _DIP_ATTACK_S before it, held while the
# strike is loudest, back over _DIP_RELEASE_S.
_DIP_DB = 8.0
_DIP_ATTACK_S = 1.0
_DIP_HOLD_S = 2.0
_DIP_RELEASE_S = 6.0


@dataclass(frozen=True)
class TimerPlan:
    """Where everything of a timer session falls, in samples."""

    timeline: Timeline
    """Scenes (one chapter per bell) and the spoken lines as segments."""
    strikes: tuple[int, ...]
    """Every bell strike, in order: the opening, each interval, each closing strike."""
    sit_start: int
    """The opening bell: where the sit's times (``--interval``, ``--at``) count from."""


def _sit_s(settings: RenderSettings) -> float:
    """The sit's length (the timer's ``duration``), which a timer cannot do without."""
    if settings.duration_s is None:
        raise SettingsError("timer: the length of the sit is required, e.g. 'meditation timer 20m'")
    return settings.duration_s


def check_timer(settings: RenderSettings) -> None:
    """Refuse, in one line, a timer session that cannot be made (before anything is spoken)."""
    sit_s = _sit_s(settings)
    if settings.interval_s is not None and settings.bell_at_s is not None:
        raise SettingsError("timer: give --interval or --at, not both")
    if settings.interval_s is not None and settings.interval_s >= sit_s:
        raise SettingsError(
            f"timer: --interval {settings.interval_s:g}s is not shorter than the sit ({sit_s:g}s)"
        )
    for at in settings.bell_at_s or ():
        if not 0 < at < sit_s:
            raise SettingsError(
                f"timer: --at {at:g}s is not inside the sit (between 0 and {sit_s:g}s)"
            )
    if settings.bell_at_s is not None and len(set(settings.bell_at_s)) != len(settings.bell_at_s):
        raise SettingsError("timer: --at names a time twice")
    for option, text in (("--open", settings.opening_line), ("--close", settings.closing_line)):
        if text is None:
            continue
        if not any(ch.isalnum() for ch in text):
            raise SettingsError(f"timer: {option} has nothing a voice can say: {text!r}")
        if len(text) > _MAX_LINE_CHARS:
            raise SettingsError(
                f"timer: {option} is {len(text)} characters long (at most {_MAX_LINE_CHARS}; "
                "write a script for more)"
            )
    if settings.soundscape not in ("auto", "none"):
        load_preset(settings.soundscape)
    if settings.layers is not None and settings.soundscape in ("auto", "none"):
        raise SettingsError("timer: --layers needs a --soundscape to choose from")


def interval_times_s(settings: RenderSettings) -> tuple[float, ...]:
    """The bells between the opening and the closing one, in seconds into the sit."""
    sit_s = _sit_s(settings)
    if settings.bell_at_s is not None:
        return tuple(sorted(settings.bell_at_s))
    if settings.interval_s is None:
        return ()
    count = int(np.ceil(sit_s / settings.interval_s - 1e-9)) - 1
    return tuple(k * settings.interval_s for k in range(1, count + 1))


def plan_timer(
    settings: RenderSettings, opening_samples: int = 0, closing_samples: int = 0
) -> TimerPlan:
    """Lay the session out: bells to the sample, the spoken lines (of these lengths) around them."""
    sr = settings.sample_rate
    sit_s = _sit_s(settings)
    segments = []
    cursor = int(round(_LEAD_S * sr))
    if settings.opening_line is not None:
        segments.append(
            Segment(
                settings.opening_line, "Opening bell", cursor, opening_samples, rate=settings.rate
            )
        )
        cursor += opening_samples + int(round(_SPOKEN_GAP_S * sr))
    sit_start = cursor
    names = ["Opening bell"]
    starts = [sit_start]
    for t in interval_times_s(settings):
        names.append(_clock(t))
        starts.append(sit_start + int(round(t * sr)))
    closing = sit_start + int(round(sit_s * sr))
    names.append("Closing bell")
    starts.append(closing)
    spacing = int(round(_STRIKE_SPACING_S * sr))
    closing_strikes = [closing + k * spacing for k in range(settings.closing_strikes)]
    strikes = (*starts[:-1], *closing_strikes)
    decay_s = Bell.Params(**BELL_SOUNDS[settings.bell]).decay_s
    end = closing_strikes[-1] + int(round(decay_s * sr))
    if settings.closing_line is not None:
        begin = closing_strikes[-1] + int(round(_SPOKEN_GAP_S * sr))
        segments.append(
            Segment(
                settings.closing_line, "Closing bell", begin, closing_samples, rate=settings.rate
            )
        )
        end = max(end, begin + closing_samples + int(round(_END_AFTER_VOICE_S * sr)))
    # The first chapter starts at 0 (players show it from the first second); the others at their bell.
    spans = [
        SceneSpan(name, 0 if i == 0 else start, starts[i + 1] if i + 1 < len(starts) else end)
        for i, (name, start) in enumerate(zip(names, starts, strict=True))
    ]
    return TimerPlan(Timeline(sr, end, tuple(segments), tuple(spans)), strikes, sit_start)


def _clock(seconds: float) -> str:
    """A chapter name from the time into the sit: '5:00', '1:02:30'."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_timer(settings: RenderSettings):
    """Render a timer session to ``settings.output``; returns a ``render.RenderResult``."""
    check_timer(settings)
    # Outputs, cover and plot paths: refused before any synthesis.
    checked = check_outputs(settings)
    settings, publication = checked.settings, checked.publication
    lines = [t for t in (settings.opening_line, settings.closing_line) if t is not None]
    rate = lines_pace(settings, lines).rate
    settings = settings.replace(rate=rate)
    audio = _speak(lines, settings, rate) if lines else []
    spoken = iter(audio)
    opening = len(next(spoken)) if settings.opening_line is not None else 0
    closing = len(next(spoken)) if settings.closing_line is not None else 0
    plan = plan_timer(settings, opening, closing)
    ambience_plan = _plan_ambience(settings, plan)
    timeline = ambience_plan.timeline if ambience_plan is not None else plan.timeline
    timeline = _with_bell(timeline, plan, ambience_plan)
    voice = None
    if audio:
        preset_voice = ambience_plan.preset.voice if ambience_plan is not None else {}
        fx = parse_voice_fx(settings.voice_fx, preset_voice, voice=settings.voice)
        voice = VoiceBus(timeline, audio, fx)

    def chunks(keep_layers: bool):
        parts: list[AmbienceStream | StruckBell] = [
            StruckBell(
                "bell",
                plan.strikes,
                sample_rate=settings.sample_rate,
                seed=settings.seed,
                params=BELL_SOUNDS[settings.bell],
                level_db=BELL_LEVEL_DB,
            )
        ]
        if ambience_plan is not None:
            parts.insert(0, AmbienceStream(ambience_plan))
        return mix_chunks(
            timeline,
            voice,
            Together(parts),
            fade_in_s=_FADE_IN_S,
            fade_out_s=_FADE_OUT_S,
            keep_layers=keep_layers,
        )

    title = settings.title or f"Timer {_clock(_sit_s(settings))}"
    tags = publish.metadata(
        publication,
        settings,
        title=title,
        timeline=timeline,
        soundscape=ambience_plan.preset.name if ambience_plan is not None else "none",
    )
    mastered = master_to_file(
        chunks,
        settings,
        title=title,
        total=timeline.length,
        stems=settings.stems,
        voice=voice is not None,
        metadata=tags,
    )
    publish.finish(settings, timeline, voice=audio or None, title=title)
    return RenderResult.of(settings, timeline, mastered)


def _speak(lines: Sequence[str], settings: RenderSettings, rate: float) -> list[np.ndarray]:
    return synthesize(
        list(lines),
        voice=settings.voice,
        rate=rate,
        sample_rate=settings.sample_rate,
        cache=SpeechCache() if settings.cache else None,
        finish_with=limit_crest,
    )


def _plan_ambience(settings: RenderSettings, plan: TimerPlan):
    """The soundscape and bed under the sit, dipping under every strike; None for a silent sit."""
    beds = [(str(settings.bed), settings.bed_level_db)] if settings.bed is not None else []
    preset = settings.soundscape if settings.soundscape not in ("auto",) else "none"
    if preset == "none" and not beds:
        return None

    def planned(only):
        return plan_ambience(
            preset, script=None, timeline=plan.timeline, seed=settings.seed, only=only, beds=beds
        )

    ambience = planned(settings.layers)
    if "bell" in ambience.preset.layers:
        # The timer's bells are the bell here: a preset's own (a waking bell on its cue) steps aside.
        others = [n for n in ambience.preset.layers if n != "bell"]
        if not others:
            return None
        ambience = planned(others)
    sr = settings.sample_rate
    dip = _dip(plan.strikes, sr)
    envelopes = {name: _times(env, dip) for name, env in ambience.envelopes.items()}
    ambience = replace(ambience, envelopes=envelopes)
    # The timings and the plot show the bed's level with its dips.
    levels = tuple(layer_levels(n, env, ambience, sr) for n, env in envelopes.items())
    return replace(ambience, timeline=replace(ambience.timeline, layer_levels=levels))


def _dip(strikes: Sequence[int], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The bed's gain under the strikes (1 elsewhere), as breakpoints; overlapping dips take the lower."""
    low = 10 ** (-_DIP_DB / 20)
    shape_x = np.array([-_DIP_ATTACK_S, 0.0, _DIP_HOLD_S, _DIP_HOLD_S + _DIP_RELEASE_S])
    shape_y = np.array([1.0, low, low, 1.0])
    xs = np.unique(np.concatenate([s + shape_x * sample_rate for s in strikes]))
    ys = np.ones_like(xs)
    for s in strikes:
        ys = np.minimum(ys, np.interp(xs, s + shape_x * sample_rate, shape_y))
    return xs, ys


def _times(
    envelope: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The product of two gain envelopes (breakpoints, linear between), at the union of their breakpoints."""
    xs = np.union1d(envelope[0], other[0])
    xs = xs[xs >= 0] if np.any(xs >= 0) else xs
    ys = np.interp(xs, *envelope) * np.interp(xs, *other)
    return xs, ys


def _with_bell(timeline: Timeline, plan: TimerPlan, ambience_plan) -> Timeline:
    """The timeline with the bell among its layers: in the timings, the plot and each scene's list."""
    sr = timeline.sample_rate
    strikes_s = tuple(s / sr for s in plan.strikes)
    bell = LayerLevels("bell", (0.0,), (-np.inf,), strikes_s)
    scenes = tuple(
        replace(scene, layers=(*scene.layers, "bell"))
        if any(scene.start <= s < scene.end for s in plan.strikes)
        else scene
        for scene in timeline.scenes
    )
    return replace(timeline, scenes=scenes, layer_levels=(*timeline.layer_levels, bell))
