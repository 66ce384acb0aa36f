"""Every check that must pass before speech starts, once.

``settings.validate`` only reads values (types, ranges, grammar). What needs a
file opened or another stage asked is checked here, before any synthesis, so a
mistake costs nothing and is one line:

- the voice chain (``--voice-fx``) parses, its filters lie below the Nyquist
  frequency of ``--sample-rate`` (``voicefx.check_for_sample_rate``), and the
  voice exists (resolved to its ``engine:name``);
- the recorded bed (``--bed``) is a usable recording;
- the pronunciation lexicon (``--lexicon`` and the script's own entries) reads;
- the soundscape preset loads and holds the ``--layers`` asked for, or an
  ambient ``--schedule``'s places load and fit (``check_schedule``);
- every output path may be written and is none of the inputs
  (:func:`check_files`);
- the publication's inputs and paths: the cover decodes, the captions and plot
  formats are known (``publish.prepare``).

The command line, batch (every variant, up front), the Dask cluster and the
studio all call these; ``render`` calls :func:`check_outputs` itself, since it
is also called directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import files, publish
from .errors import (
    ManifestError,
    MeditationError,
    ScriptError,
    SettingsError,
    SoundscapeError,
    one_line,
)
from .lexicon import script_lexicon
from .script import Pause, Script
from .settings import SCHEMA, RenderSettings, Role, preset_name
from .soundscape import Preset, check_scene_names, load_preset
from .soundscape.layers.recording import inspect_recording
from .soundscape.schedule import Schedule, check_fits, load_schedule
from .soundscape.words import choose, load_words
from .speakers import format_speakers, parse_speakers
from .voicefx import check_for_sample_rate, parse_voice_fx
from .voices import resolve_voice

__all__ = [
    "Checked",
    "preflight",
    "check_values",
    "check_outputs",
    "check_soundscape",
    "check_schedule",
    "check_files",
    "check_speakers",
    "preset_name",
]


@dataclass(frozen=True)
class Checked:
    """Settings that passed every check, and what the checks loaded."""

    settings: RenderSettings
    publication: publish.Publication


def preflight(
    settings: RenderSettings,
    script: Script | None = None,
    *,
    voice: bool = True,
    inputs: Iterable[Path | None] = (),
) -> Checked:
    """Every check, in order: values (voice chain, bed, voice, soundscape), then outputs and publication."""
    settings = check_values(settings, script, voice=voice)
    return check_outputs(settings, inputs=inputs)


def check_values(
    settings: RenderSettings,
    script: Script | None = None,
    *,
    voice: bool = True,
    load: Callable[[str], Preset] = load_preset,
    where: str | None = None,
) -> RenderSettings:
    """The checks on what the settings name; returns the settings with the voice resolved (if ``voice``).

    ``load`` loads a preset by name (batch passes a cached one). With
    ``where`` (a manifest and variant), each error is a ManifestError naming
    it and the setting: ``batch.toml: variant 'v': layers: …``.
    """
    with _named(where, "voice_fx"):
        parse_voice_fx(settings.voice_fx)
    if settings.bed is not None:
        with _named(where, "bed"):
            inspect_recording(settings.bed)
    if voice:
        with _named(where, "voice"):
            settings = dataclasses.replace(settings, voice=resolve_voice(settings.voice))
    if settings.lexicon is not None or script is not None:
        with _named(where, "lexicon"):
            script_lexicon(script, settings.lexicon)  # a bad entry, one line at its file:line
    with _named(where, "schedule"):
        check_schedule(settings)
    preset = None
    if settings.schedule is None:
        preset = check_soundscape(settings, script, load=load, where=where)
    if voice:
        # The chain builds its filters when the first speech reaches it: one above
        # Nyquist would fail only after everything was spoken.
        with _named(where, "voice_fx"):
            fx = parse_voice_fx(
                settings.voice_fx,
                preset.voice if preset is not None else {},
                voice=settings.voice,
            )
            check_for_sample_rate(fx, settings.sample_rate)
        if settings.speakers is not None:
            with _named(where, "speakers"):
                settings = check_speakers(settings, script, preset)
    return settings


def check_speakers(
    settings: RenderSettings, script: Script | None = None, preset: Preset | None = None
) -> RenderSettings:
    """Each speaker's voice exists and its chain builds at the sample rate; returns the settings
    with every speaker's voice resolved. An error in an entry the script wrote is at its file:line:col."""
    assert settings.speakers is not None
    resolved = []
    for speaker in parse_speakers(settings.speakers):
        try:
            voice = resolve_voice(speaker.voice)
            fx = parse_voice_fx(
                speaker.chain or settings.voice_fx,
                preset.voice if preset is not None else {},
                voice=voice,
            )
            check_for_sample_rate(fx, settings.sample_rate, f"speaker {speaker.name!r}: chain")
        except MeditationError as exc:
            message = one_line(exc)
            if speaker.chain is not None:  # the chain is the entry's chain=, not --voice-fx
                message = message.replace(f"--voice-fx {speaker.chain!r}", f"chain={speaker.chain}")
            written = script is not None and any(
                s == speaker for s in script.speakers
            )  # as the script wrote it, not replaced by a manifest or --speakers
            if written and script is not None:
                line, col = script.speaker_places.get(speaker.key, (0, 0))
                raise ScriptError(
                    f"speaker {speaker.name!r}: {message}",
                    path=script.path,
                    line=line,
                    col=col,
                ) from None
            raise SettingsError(f"speakers: {speaker.name!r}: {message}") from None
        resolved.append(dataclasses.replace(speaker, voice=voice))
    return dataclasses.replace(settings, speakers=format_speakers(tuple(resolved)))


def check_schedule(settings: RenderSettings) -> Schedule | None:
    """An ambient night's ``--schedule`` (None without one): it parses, its places load, it fits with the rest."""
    if settings.schedule is None:
        if settings.wake_s is not None or settings.crossfade_s is not None:
            raise SettingsError("--wake and --crossfade shape a --schedule; give one")
        return None
    if settings.soundscape not in ("auto", "none"):
        raise SettingsError(
            "give --schedule or --soundscape, not both (a schedule names its places)"
        )
    if settings.layers is not None:
        raise SettingsError("--layers does not apply to a --schedule (each place plays its preset)")
    schedule = load_schedule(settings.schedule)
    if settings.duration_s is not None:  # a batch variant's night: checked before any renders
        check_fits(
            schedule, settings.duration_s, crossfade_s=settings.crossfade_s, wake_s=settings.wake_s
        )
    return schedule


def check_soundscape(
    settings: RenderSettings,
    script: Script | None = None,
    *,
    load: Callable[[str], Preset] = load_preset,
    where: str | None = None,
) -> Preset | None:
    """The preset a render will play (None for narration alone); raises on an unknown one or unknown layers."""
    name = preset_name(settings, script)
    if settings.words is not None and name != "auto":
        # Only auto reads the words; a list given beside another soundscape (or none) is still an
        # input, so a mistake in it (or a missing file) is refused rather than silently skipped.
        with _named(where, "words"):
            load_words(settings.words)
    if name is None:
        return None
    with _named(where, "soundscape"):
        chosen = choose(name, script, settings.words)  # auto: the script's words choose
        preset = chosen if isinstance(chosen, Preset) else load(chosen)
        if script is not None:
            # A probable typo in a scene name is refused here; no match at all is a warning at the end.
            check_scene_names(preset, [scene.name for scene in script.scenes])
    if settings.layers is not None:
        # The breath layer joins any preset when the script guides breathing (see soundscape.plan_ambience).
        known = [*preset.layers, *(["breath"] if _guides_breathing(script) else [])]
        unknown = [n for n in settings.layers if n not in known]
        if unknown:
            label = "--layers: " if where is None else ""
            with _named(where, "layers"):
                raise SoundscapeError(
                    f"{label}{', '.join(unknown)} not in soundscape {preset.name!r} "
                    f"(it has: {', '.join(preset.layers)})"
                )
    return preset


def _guides_breathing(script: Script | None) -> bool:
    return script is not None and any(
        isinstance(item, Pause) and (item.phases or item.kind == "breathe")
        for scene in script.scenes
        for item in scene.items
    )


@contextlib.contextmanager
def _named(where: str | None, key: str) -> Iterator[None]:
    """Reword an error for a batch manifest: ``{where}: {key}: {message}``."""
    try:
        yield
    except MeditationError as exc:
        if where is None:
            raise
        raise ManifestError(f"{where}: {key}: {one_line(exc)}") from None


def check_outputs(settings: RenderSettings, *, inputs: Iterable[Path | None] = ()) -> Checked:
    """Output paths and the publication's inputs; returns the settings with shorthand side files placed.

    ``inputs`` adds files the settings do not name (a manifest).
    """
    settings = publish.beside_output(settings)
    check_files(settings, inputs=inputs)
    return Checked(settings, publish.prepare(settings))


def check_files(settings: RenderSettings, *, inputs: Iterable[Path | None] = ()) -> None:
    """``check_outputs`` for one render's settings: every path setting by its role in the schema.

    ``inputs`` adds what the settings do not name directly (a manifest).
    """

    def paths(role):
        return {
            spec.option: getattr(settings, spec.name)
            for spec in SCHEMA.values()
            if spec.role is role
        }

    read = [*paths(Role.INPUT).values(), *inputs]
    if str(settings.soundscape).lower().endswith(".toml"):
        read.append(Path(settings.soundscape))
    files.check_outputs(
        paths(Role.OUTPUT),
        inputs=read,
        folders=paths(Role.OUTPUT_FOLDER),
        force=settings.force,
    )
