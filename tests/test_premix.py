"""The mix made while the voice speaks: the same samples however the speech arrives."""

import numpy as np
import pytest

from meditation import render as render_module
from meditation.mix import CHUNK, track_fades_s
from meditation.script import parse_script
from meditation.segments import plan_segments
from meditation.settings import RenderSettings
from meditation.soundscape.layers import BLOCK_SIZE
from meditation.timeline import layout

SR = 22050

# Scenes that change the layers, a breathing exercise with spoken cues, a
# short pause that stays ducked, and enough speech for the voice's opening.
SCRIPT = """---
title: Premix
---
# Arrive

Settle in and let the day fall away from you. Feel the weight of your body resting.
Notice the air around you, cool and still, and the quiet of the room.

[breathe 2-1-2 x2 cues]

# River

Now a river runs beside you, wide and slow, and the light moves on the water.
Listen as it carries every thought downstream, one after another, far away.
A heron lifts from the reeds. Its wings beat once, and it is gone.

# Return

Come back slowly. Feel your hands, your feet, and the floor beneath you.
When you are ready, open your eyes.
"""

# Every kind of cue the plan places from the speech: at a text (before it,
# too), at a scene, at the end; wings that flap all along (they look ahead
# for their cues) and beats that follow the scenes.
PRESET = """
fade_s = 3.0
[layers.drone]
level_db = -10.0
[layers.river]
level_db = -8.0
[layers.wings]
level_db = -6.0
continuous = true
flap_rate_hz = 0.7
[layers.bell]
level_db = -8.0
[layers.beats]
level_db = -16.0
[layers.beats.scenes]
river = { beat_hz = 6.0 }
[scenes.default]
drone = 0.0
beats = 0.0
[scenes.arrive]
drone = 0.0
beats = 0.0
[scenes.river]
river = 0.0
drone = -6.0
beats = 0.0
wings = -4.0
fade_s = 2.0
[scenes.return]
drone = 0.0
[[cues]]
layer = "bell"
action = "strike"
at = "start"
offset_s = 1.0
[[cues]]
layer = "wings"
action = "beat"
at_text = "its wings beat once"
offset_s = -1.5
[[cues]]
layer = "bell"
action = "strike"
at_scene = "Return"
[[cues]]
layer = "bell"
action = "strike"
at = "end"
"""


# No cues: here the ducking's margin is the one that decides how far the mix goes.
STEADY = """
[layers.drone]
level_db = -6.0
[layers.river]
level_db = -6.0
[scenes.default]
drone = 0.0
[scenes.river]
river = 0.0
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("premix")
    preset = folder / "premix.toml"
    preset.write_text(PRESET, encoding="utf-8")
    (folder / "steady.toml").write_text(STEADY, encoding="utf-8")
    script = parse_script(SCRIPT, path="premix.md")
    settings = RenderSettings(
        script=folder / "premix.md",
        output=folder / "out.wav",
        voice="pyttsx3",
        rate=0.9,
        sample_rate=SR,
        soundscape=str(preset),
        lead_in_s=3,
        tail_s=6,
        cache=False,
    )
    planned = plan_segments(script, rate=settings.rate)
    audio = render_module._speak(planned, settings)
    return script, planned, settings, audio


def _premixed(setup, one_by_one: bool, **changes):
    script, planned, settings, audio = setup
    settings = settings.replace(**changes) if changes else settings
    made_before_the_end = (0, 0)
    fades = track_fades_s(
        settings.lead_in_s, settings.tail_s, settings.fade_in_s, settings.fade_out_s
    )
    with render_module._premix(script, planned, settings, fades) as premix:
        if one_by_one:
            for a in audio:
                premix.add(a)
                assert premix.caught_up(60)
            made_before_the_end = (premix.position, premix.advances)
        made = premix.finish(audio)
    measured = made.measured
    measured.finish()
    mix = None
    if measured.spool is not None:
        measured.spool.seek(0)
        mix = np.frombuffer(measured.spool.read(), dtype=np.float32).reshape(-1, 2)
    figures = (measured.meter.integrated_lufs(), measured.peaks.finish_db(), measured.position)
    measured.close()
    return made, mix, figures, made_before_the_end


@pytest.mark.slow
@pytest.mark.parametrize(
    "grid, preset",
    [(CHUNK, "premix"), (BLOCK_SIZE, "premix"), (BLOCK_SIZE, "steady"), (BLOCK_SIZE, "remade")],
)
def test_the_mix_made_while_the_speech_comes_in_is_the_mix_made_after_it(
    setup, grid, preset, monkeypatch
):
    if preset == "remade":
        # A layer that cannot take later cues is made again and replayed: the same samples.
        from meditation.soundscape.layers import LAYERS, Layer

        for cls in LAYERS.values():
            monkeypatch.setattr(cls, "add_cues", Layer.add_cues)
        preset = "premix"
    # On the finer grid (a layer's block) the mix goes right up to the
    # margins kept before the first unknown segment, so each one matters;
    # a shorter opening for the voice's level starts the mix sooner, so
    # this short script is mixed segment by segment.
    monkeypatch.setattr("meditation.premix.CHUNK", grid)
    monkeypatch.setattr("meditation.mix.VOICE_LEVEL_SAMPLE_S", 4.0)
    soundscape = str(setup[2].script.parent / f"{preset}.toml")
    at_once, mix, figures, _ = _premixed(setup, one_by_one=False, soundscape=soundscape)
    growing, grown_mix, grown_figures, (early, advances) = _premixed(
        setup, one_by_one=True, soundscape=soundscape
    )
    total = at_once.timeline.length
    # Most of the track was mixed and measured before the last segment came in...
    assert early % grid == 0 and early > 0.5 * total
    assert advances >= len(setup[3]) // 2
    # ...and the result is the same to the last bit, and so is what was measured.
    assert len(mix) == len(grown_mix) == total
    assert np.array_equal(mix, grown_mix)
    assert figures == grown_figures
    assert growing.timeline == at_once.timeline
    assert np.abs(mix).max() > 0.01
    if preset == "steady":
        return
    # The plan did place what the test is about (else it would prove little).
    cues = at_once.plan.cues
    assert len(cues["bell"]) == 3 and len(cues["wings"]) == 1 and len(cues["beats"]) == 3
    assert [b.phase for b in at_once.timeline.breaths][:3] == ["in", "hold", "out"]


def test_a_timeline_laid_out_before_all_speech_is_final_up_to_where_it_says(setup):
    script, planned, settings, audio = setup
    lengths = [len(a) for a in audio]
    kwargs = dict(
        sample_rate=SR, lead_in_s=3, tail_s=6, scene_names=[s.name for s in script.scenes]
    )
    final = layout(planned, lengths, **kwargs)
    assert final.complete
    previous = 0
    for known in range(len(lengths) + 1):
        partial = layout(planned, lengths[:known], known=known, **kwargs)
        settled = partial.settled
        assert previous <= settled <= final.length  # it only ever moves on
        previous = settled
        # Before `settled` everything is final; after it, every position is a lower bound.
        for a, b in zip(partial.segments, final.segments):
            assert a.start <= b.start
            if a.start < settled:
                assert a.start == b.start
            if a.end < settled and a.length:
                assert (a.start, a.length) == (b.start, b.length)
        for a, b in zip(partial.scenes, final.scenes):
            assert a.name == b.name and a.start <= b.start
            if a.start < settled:
                assert a.start == b.start
        for a, b in zip(partial.breaths, final.breaths):
            assert a.start <= b.start
            if a.start < settled:
                assert a == b
        assert partial.length <= final.length
    assert settled == final.length


@pytest.mark.slow
def test_with_a_duration_to_fit_nothing_is_mixed_before_the_last_length(setup):
    # Pauses fitted to --duration need every length first: the same mix, all made at the end
    # (without a duration, the same speech arriving one by one is mixed as it comes).
    plain, _, _, plain_early = _premixed(setup, one_by_one=True, duration_s=None)
    assert plain_early[0] > 0
    duration_s = plain.timeline.duration_s + 20
    fitted, fitted_mix, fitted_figures, early = _premixed(
        setup, one_by_one=True, duration_s=duration_s
    )
    assert early == (0, 0)
    assert abs(fitted.timeline.duration_s - duration_s) < 0.05
    _, at_once_mix, at_once_figures, _ = _premixed(setup, one_by_one=False, duration_s=duration_s)
    assert np.array_equal(fitted_mix, at_once_mix) and fitted_figures == at_once_figures
    assert np.isfinite(fitted_figures[0])


@pytest.fixture
def early_opening(monkeypatch):
    """The voice's level from its first 4 s: this short script is then mixed segment by segment."""
    monkeypatch.setattr("meditation.mix.VOICE_LEVEL_SAMPLE_S", 4.0)


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["speech", "track"])
def test_each_loudness_scope_measures_the_same_samples_either_way(setup, scope, early_opening):
    # "speech" starts at the first word: a range whose start is known only once that word is.
    at_once, mix, figures, _ = _premixed(setup, one_by_one=False, loudness_scope=scope)
    _, grown_mix, grown_figures, (early, _) = _premixed(
        setup, one_by_one=True, loudness_scope=scope
    )
    assert early > 0
    assert figures == grown_figures and np.array_equal(mix, grown_mix)
    # The scope does change what is measured: "speech" stops at the last word, "track" at the end.
    other_scope = "track" if scope == "speech" else "speech"
    other = _premixed(setup, one_by_one=False, loudness_scope=other_scope)[2]
    assert other[0] != figures[0]
    spoken = [s for s in at_once.timeline.segments if s.length]
    heard = (spoken[0].start, spoken[-1].end) if scope == "speech" else None
    assert at_once.measured.meter.span == heard


@pytest.mark.slow
def test_a_track_too_long_to_spool_is_measured_the_same_and_left_to_the_final_pass(
    setup, early_opening, monkeypatch
):
    # Past the spool's limit the mix is not kept: the final pass makes it again,
    # and measuring stops where the loudness range ends (30 s after the last word).
    monkeypatch.setattr("meditation.measure._SPOOL_MAX_S", 20.0)
    at_once, mix, figures, _ = _premixed(setup, one_by_one=False, tail_s=60)
    _, grown_mix, grown_figures, (early, _) = _premixed(setup, one_by_one=True, tail_s=60)
    assert mix is None and grown_mix is None
    assert early > 0
    last_word = at_once.timeline.segments[-1].end
    assert figures[2] < at_once.timeline.length and figures[2] >= last_word + 30 * SR
    assert figures == grown_figures


@pytest.mark.slow
def test_a_render_is_the_same_whether_its_speech_is_spoken_or_comes_from_the_cache(
    tmp_path, monkeypatch, early_opening
):
    # The real path, with the real Piper voice: spoken, the mix is made as each
    # segment arrives; from the cache, every segment is there at once.
    from meditation.premix import Premix
    from meditation.render import render

    monkeypatch.setenv("MEDITATION_CACHE_DIR", str(tmp_path / "cache"))
    advances = []
    original = Premix._advance

    def counted(self, audio):
        original(self, audio)
        advances.append(self.position)

    monkeypatch.setattr(Premix, "_advance", counted)
    script = tmp_path / "s.md"
    script.write_text(SCRIPT, encoding="utf-8")
    files = []
    for name in ("spoken.wav", "cached.wav"):
        settings = RenderSettings(
            script=script,
            output=tmp_path / name,
            voice="piper:joe",
            sample_rate=SR,
            soundscape="dream",
            lead_in_s=2,
            tail_s=4,
        )
        render(settings)
        files.append((tmp_path / name).read_bytes())
        if name == "spoken.wav":
            assert max(advances) > 0  # mixed before the last segment was spoken
    assert files[0] == files[1]
