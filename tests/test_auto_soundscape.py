"""``--soundscape auto``: the script's own words choose each scene's layers and cues.

The matcher is tested on its own (stems, whole words, negation, line
numbers); the planner on the dream and on scripts written for this test;
and real renders with ``--stems`` check that each scene's stems hold the
layers its words name and no others.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from meditation.cli import main
from meditation.script import parse_script, read_script
from meditation.segments import plan_segments
from meditation.soundscape.plan import plan_ambience
from meditation.soundscape.words import WORDS_FILE, auto_preset, find_words, load_words
from meditation.timeline import layout

DREAM = Path(__file__).resolve().parent.parent / "scripts" / "dream.md"
SR = 16000
FADE_S = 8.0  # words.toml's fade_s: a scene is judged after its crossfade
SILENT_DB = -90.0


@pytest.fixture(scope="module")
def words():
    return load_words()


def _named(text, words, **kw):
    return [(m.name, m.word) for m in find_words(text, words, **kw) if not m.negated]


# --- the matcher ---


def test_a_word_matches_its_forms_and_never_inside_another_word(words):
    for form in ("rain", "Rains", "raining", "rained", "rainfall", "rainy", "raindrops"):
        assert ("rain", form) in _named(f"The {form} is soft.", words), form
    for other in ("train", "brain", "drain", "terrain", "grain", "Ukraine", "rainbow"):
        assert _named(f"A {other} passes.", words) == [], other
    assert ("sea", "waving") in _named("Grass waving.", words)  # wave, its e dropped
    assert ("night", "starry") in _named("A starry sky.", words)  # star, its r doubled
    assert ("river", "river's") in _named("The river's surface.", words)  # possessive
    # Listed exceptions: a winding path is no wind, a belly no bell.
    assert _named("A winding path; breathe into the belly.", words) == []
    assert _named("Heart, seasoned, search, firefly, starting.", words) == []
    # Words a meditation says about the body and the mind, not about a place.
    assert _named("Unwind; relax your temples; tidy thoughts waver.", words) == []
    assert _named("Night falls. The winds blow.", words) == [("night", "Night"), ("wind", "winds")]


def test_a_negated_word_is_not_heard_but_only_in_its_clause(words):
    assert _named("There is no wind.", words) == []
    assert _named("Without the sound of rain.", words) == []
    assert _named("Not a breath of wind stirs.", words) == []
    assert _named("You don't hear the wind.", words) == []
    assert _named("The sea isn't rough.", words) == [("sea", "sea")]  # it negates what follows
    # The negation ends with its clause, and reaches only a few words back.
    assert _named("No clouds, only rain.", words) == [("rain", "rain")]
    assert _named("Nothing disturbs the stillness of the quiet sea.", words) == [("sea", "sea")]
    negated = [m for m in find_words("There is no wind.", words) if m.negated]
    assert [(m.name, m.word) for m in negated] == [("wind", "wind")]


def test_each_word_knows_its_line(words):
    script = parse_script(
        "---\ntitle: t\n---\n# The shore\n\nWe walk on\nby the sea, and\n\nthe rain begins.\n",
        path="x.md",
    )
    scene = script.scenes[0]
    found = [(m.name, m.word, m.line) for m in find_words(scene.name, words, line=scene.line)]
    for item in scene.items:
        found += [
            (m.name, m.word, m.line)
            for m in find_words(item.text, words, line=item.line, line_starts=item.line_starts)
        ]
    assert found == [("sea", "shore", 4), ("sea", "sea", 7), ("rain", "rain", 9)]


def test_the_shipped_list_names_the_issues_places(words):
    for word, place in {
        "sea": "sea",
        "shore": "sea",
        "waves": "sea",
        "rain": "rain",
        "storm": "rain",
        "drizzle": "rain",
        "fire": "fireside",
        "hearth": "fireside",
        "embers": "fireside",
        "forest": "forest",
        "birds": "forest",
        "dawn": "forest",
        "night": "night",
        "crickets": "night",
        "stars": "night",
        "river": "river",
        "brook": "brook",
        "stream": "brook",
        "wind": "wind",
        "mountain": "wind",
        "temple": "temple",
        "bowl": "temple",
    }.items():
        assert ("place", place) in [(m.kind, m.name) for m in find_words(word, words)], word
    for word, cue in {"bell": "bell", "thunder": "thunder", "owl": "owl"}.items():
        assert ("cue", cue) in [(m.kind, m.name) for m in find_words(word, words)], word


# --- planning ---


def _plan(text, soundscape="auto"):
    script = parse_script(text, path="held-out.md")
    planned = plan_segments(script, rate=1.0)
    # Speech lengths from the text (about 14 characters a second): the plan needs no voice.
    lengths = [int(len(s.text) / 14 * SR) + SR // 2 for s in planned if s.spoken]
    timeline = layout(
        planned,
        lengths,
        sample_rate=SR,
        lead_in_s=1.0,
        tail_s=2.0,
        scene_names=[s.name for s in script.scenes],
    )
    return script, plan_ambience(soundscape, script=script, timeline=timeline, seed=1)


def _settled_layers(plan):
    """Per scene: the layers at a level past the crossfade (from the plan's envelopes)."""
    out = {}
    for scene in plan.timeline.scenes:
        t = np.linspace(scene.start + FADE_S * SR, scene.end - 1, 64)
        out[scene.name] = {
            name
            for name, (xs, ys) in plan.envelopes.items()
            if name not in plan.cue_only and np.min(np.interp(t, xs, ys)) > 0
        }
    return out


def _cues_in(plan, layer):
    sr = plan.timeline.sample_rate
    return [
        next(s.name for s in plan.timeline.scenes if s.start <= c.time_s * sr < s.end)
        for c in plan.cues.get(layer, ())
    ]


def test_the_dream_under_auto_hears_river_in_the_valley_wings_at_the_phoenix_wind_in_the_flight():
    script = read_script(DREAM)
    _, plan = _plan(DREAM.read_text(encoding="utf-8"))
    layers = _settled_layers(plan)
    assert "river" in layers["The valley and the river"]
    assert "wind" in layers["The flight"]
    assert _cues_in(plan, "wings") == ["The phoenix"]
    # Where nothing is named, the first scene is a quiet bed and the next keeps it.
    assert layers["The library"] == layers["The book of my life"] == {"drone", "wind"}
    preset = auto_preset(script, load_words())
    assert set(preset.scenes["the valley and the river"].layers) == {"river"}


def test_the_dream_keeps_its_hand_made_preset_unless_told(tmp_path, capsys):
    assert main(["render", str(DREAM), "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and all("(preset 'dream')" in line for line in lines)
    assert main(["render", str(DREAM), "--explain", "--soundscape", "auto"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7
    assert lines[2].startswith("The valley and the river: river <- river: 'river' (line 24)")
    assert "wings cue at 'wings' (line 36)" in lines[3]


def test_each_occurrence_of_a_cue_word_is_a_cue_in_order():
    text = (
        "# Temple\n\nA bell rings once. [pause 9s]\n\n"
        "# Garden\n\nA gentle breeze. [pause 9s] Far away, the bell rings again. [pause 9s]\n"
    )
    _, plan = _plan(text)
    assert _cues_in(plan, "bell") == ["Temple", "Garden"]
    times = [c.time_s for c in plan.cues["bell"]]
    segments = [s for s in plan.timeline.segments if "bell" in s.text]
    for t, seg in zip(times, segments, strict=True):  # at the word, inside the sentence saying it
        assert seg.start / SR <= t <= seg.end / SR


# The held-out set: scripts of scenes at named places, and the layers each scene's words name.
HELD_OUT = {
    "shore-and-rain": (
        "# The shore\n\nYou sit on the sand by the sea. [pause 9s] Waves wash in. [pause 3s]\n\n"
        "# Rain\n\nClouds gather, and soft rain begins to fall. [pause 12s]\n\n"
        "# Stillness\n\nRest here a while, and let everything settle. [pause 12s]\n",
        {"The shore": {"waves"}, "Rain": {"rain"}, "Stillness": {"rain"}},
        {},
    ),
    "fire-and-night": (
        "# By the fire\n\nYou rest by the hearth, the embers glowing. [pause 12s]\n\n"
        "# Outside\n\nYou step out into the night. Crickets sing under the stars. "
        "An owl calls. [pause 12s]\n",
        {"By the fire": {"campfire"}, "Outside": {"crickets"}},
        {"owl": ["Outside"]},
    ),
    "forest-and-temple": (
        "# The forest at dawn\n\nBirds wake among the trees. [pause 12s]\n\n"
        "# The temple\n\nYou enter the temple. A bell rings. [pause 12s]\n",
        {"The forest at dawn": {"trees", "birds"}, "The temple": {"bowl", "chimes"}},
        {"bell": ["The temple"]},
    ),
    "quiet-then-mountain": (
        "# Arrival\n\nSettle in and close your eyes. [pause 12s]\n\n"
        "# The mountain\n\nHigh on the mountain the wind moves. There is no rain here. "
        "[pause 12s]\n",
        {"Arrival": {"drone", "wind"}, "The mountain": {"wind"}},
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(HELD_OUT))
def test_held_out_scripts_plan_the_layers_their_words_name(name):
    text, expected, cues = HELD_OUT[name]
    _, plan = _plan(text)
    assert _settled_layers(plan) == expected
    for layer, scenes in cues.items():
        assert _cues_in(plan, layer) == scenes
    assert set(plan.cue_only) == set(cues)


def _render(script, folder, *more):
    return main(
        [
            "render",
            str(script),
            "--voice",
            "pyttsx3",
            "--sample-rate",
            str(SR),
            "--lead-in",
            "1",
            "--tail",
            "2",
            "-o",
            str(folder / "out.wav"),
            "--progress",
            "off",
            "--no-cache",
            *more,
        ]
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Each held-out script rendered (pyttsx3, 16 kHz) with stems and timings."""
    out = {}
    for name, (text, _, _) in HELD_OUT.items():
        folder = tmp_path_factory.mktemp(name)
        script = folder / f"{name}.md"
        script.write_text(text, encoding="utf-8")
        code = _render(
            script,
            folder,
            "--stems",
            str(folder / "stems"),
            "--timings",
            str(folder / "t.json"),
        )
        assert code == 0
        stems = {p.stem: sf.read(p, dtype="float64")[0] for p in (folder / "stems").glob("*.wav")}
        out[name] = (json.loads((folder / "t.json").read_text(encoding="utf-8")), stems)
    return out


def _db(x):
    return 20 * np.log10(np.sqrt(np.mean(np.square(x))) + 1e-12)


@pytest.mark.parametrize("name", sorted(HELD_OUT))
def test_held_out_renders_hold_each_scenes_named_layers_in_its_stems_and_no_others(name, rendered):
    _, expected, cues = HELD_OUT[name]
    timings, stems = rendered[name]
    beds = set().union(*expected.values())
    assert set(stems) == {"voice", *beds, *cues}  # one stem per chosen layer, nothing else
    for scene in timings["scenes"]:
        a, b = int((scene["start"] + FADE_S) * SR), int(scene["end"] * SR)
        assert b - a > 2 * SR, scene  # the scene outlasts its crossfade
        for layer in beds:
            level = _db(stems[layer][a:b])
            if layer in expected[scene["name"]]:
                assert level > -45, (scene["name"], layer, level)
            else:
                assert level < SILENT_DB, (scene["name"], layer, level)
        for layer, where in cues.items():
            whole = stems[layer][int(scene["start"] * SR) : b]
            if scene["name"] in where:
                assert _db(whole) > -60, (scene["name"], layer)
    # The timings say why: each scene's layers and the words (with lines) that chose them.
    for scene in timings["scenes"]:
        chosen = {layer for c in scene["why"] for layer in c["layers"] if not c.get("negated")}
        assert chosen >= expected[scene["name"]]
        for c in scene["why"]:
            for w in c.get("words", ()):
                assert w["word"].lower() in HELD_OUT[name][0].splitlines()[w["line"] - 1].lower()


def test_the_timings_record_a_negated_word_and_a_kept_place(rendered):
    timings, _ = rendered["quiet-then-mountain"]
    mountain = next(s for s in timings["scenes"] if s["name"] == "The mountain")
    assert {"layers": [], "words": [{"word": "rain", "line": 7}], "negated": True} in mountain[
        "why"
    ]
    timings, _ = rendered["shore-and-rain"]
    still = next(s for s in timings["scenes"] if s["name"] == "Stillness")
    assert still["why"] == [{"layers": ["rain"], "kept_from": "Rain"}]


def test_the_plot_writes_under_each_scene_what_chose_it(rendered):
    pytest.importorskip("matplotlib")
    from meditation.plot import draw_plan

    timings, _ = rendered["fire-and-night"]
    fig = draw_plan(timings)
    labels = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "scene-why"]
    assert labels == [
        "campfire ← fire, hearth, embers",
        "crickets ← night, crickets, stars; ♪owl ← owl",
    ]


def test_the_same_script_and_seed_give_the_same_audio(tmp_path):
    script = tmp_path / "s.md"
    script.write_text(HELD_OUT["forest-and-temple"][0], encoding="utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _render(script, tmp_path / "a") == 0
    assert _render(script, tmp_path / "b") == 0
    a = (tmp_path / "a" / "out.wav").read_bytes()
    assert a == (tmp_path / "b" / "out.wav").read_bytes()
    assert _db(sf.read(tmp_path / "a" / "out.wav")[0]) > -40


# --- the user's words ---


def test_a_users_word_list_adds_places_and_cues(tmp_path, capsys):
    extra = tmp_path / "mine.toml"
    extra.write_text(
        "[layers.waterfall]\nlevel_db = -10.0\n\n"
        '[places.cave]\nwords = ["cave", "cavern"]\nplay = { waterfall = 0.0 }\n\n'
        '[cues.drum]\nwords = ["drum"]\nlayer = "bowl"\naction = "strike"\nlevel_db = -14.0\n'
        "interval_s = 0.0\n",
        encoding="utf-8",
    )
    script = tmp_path / "cave.md"
    script.write_text(
        "---\nwords: mine.toml\n---\n# Below\n\nDeep in the caverns a drum sounds.\n",
        encoding="utf-8",
    )
    assert main(["render", str(script), "--explain"]) == 0
    line = capsys.readouterr().out.strip()
    assert line == "Below: waterfall <- cave: 'caverns' (line 6); drum cue at 'drum' (line 6)"


@pytest.mark.parametrize(
    "body, where, message",
    [
        ("[places.sea\nwords = []\n", 1, "word list is not valid TOML"),
        ('[places.cave]\nwords = ["cave"]\nplay = { lava = 0.0 }\n', 3, "plays 'lava'"),
        ('\n[places.cave]\nwords = ["deep cave"]\n', 3, "is not one word"),
        ('colour = "blue"\n', 1, "unknown key 'colour'"),
        ('[cues.gong]\nwords = ["gong"]\nlayer = "bowl"\naction = "ring"\n', 4, "no cue 'ring'"),
        ("\n\n[layers.rain]\nintensity = 7.0\n", 3, "intensity"),
    ],
)
def test_a_bad_word_list_is_one_line_at_its_file_and_line(tmp_path, capsys, body, where, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(body, encoding="utf-8")
    script = tmp_path / "s.md"
    script.write_text("# Here\n\nBy the sea.\n", encoding="utf-8")
    out = tmp_path / "out.wav"
    assert main(["render", str(script), "--words", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{bad}:{where}:" in err and message in err, err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("soundscape", ["stream", "none"])
def test_a_bad_word_list_is_refused_beside_any_soundscape_not_skipped(tmp_path, capsys, soundscape):
    # Only auto reads the words, and a missing or broken file beside another soundscape was
    # silently ignored; a good one still renders there.
    script = tmp_path / "s.md"
    script.write_text("# Here\n\nBy the sea.\n", encoding="utf-8")
    good = tmp_path / "good.toml"
    good.write_text('[places.cave]\nwords = ["cave"]\nplay = { drone = 0.0 }\n', encoding="utf-8")
    (tmp_path / "broken.toml").write_text('[places.cave]\nwords = "cave"\n', encoding="utf-8")
    out = tmp_path / "out.wav"
    for name in ("missing.toml", "broken.toml"):
        words = str(tmp_path / name)
        args = ["render", str(script), "--soundscape", soundscape, "--words", words]
        assert main([*args, "--sample-rate", "16000", "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and name in err and "Traceback" not in err, err
        assert not out.exists()
    args = ["render", str(script), "--soundscape", soundscape, "--words", str(good)]
    assert main([*args, "--voice", "pyttsx3", "--sample-rate", "16000", "-o", str(out)]) == 0
    assert _db(sf.read(out)[0]) > -40


def test_explain_with_layers_names_only_what_those_layers_play(tmp_path, capsys):
    # --explain said "rain <- rain: …" for a render whose --layers kept only the waves.
    script = tmp_path / "s.md"
    script.write_text("# Shore\n\nWaves on the sea.\n\n# Storm\n\nRain falls.\n", encoding="utf-8")
    args = ["render", str(script), "--soundscape", "auto", "--layers", "waves"]
    assert main([*args, "--explain"]) == 0
    shore, storm = capsys.readouterr().out.strip().splitlines()
    assert shore.startswith("Shore: waves <- sea: ") and "rain" not in storm, (shore, storm)
    stems = tmp_path / "stems"
    out = ["--voice", "pyttsx3", "--sample-rate", "16000", "--stems", str(stems)]
    out += ["--timings", str(tmp_path / "o.json")]
    assert main([*args, *out, "-o", str(tmp_path / "o.wav")]) == 0
    assert sorted(p.name for p in stems.iterdir()) == ["voice.wav", "waves.wav"]
    # The timings say the same: what chose the waves, and nothing of the rain not played.
    scenes = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))["scenes"]
    told = {s["name"]: [layer for c in s.get("why", ()) for layer in c["layers"]] for s in scenes}
    assert told["Shore"] == ["waves"] and "rain" not in told["Storm"], told


def test_the_shipped_word_list_is_not_a_preset():
    from meditation.soundscape import list_presets

    assert WORDS_FILE.is_file()
    assert "words" not in {p.name for p in list_presets()}


def test_soundscapes_auto_lists_the_places_cues_and_their_words(capsys):
    assert main(["soundscapes", "auto"]) == 0
    out = capsys.readouterr().out
    assert f"words: {WORDS_FILE}" in out
    assert "  sea: waves <- sea, ocean, shore" in out
    assert "  bell: temple-bell strike <- bell" in out


def test_a_script_without_headings_is_one_scene_its_words_choose(tmp_path, capsys):
    script = tmp_path / "plain.txt"
    script.write_text("Rest by the fire.\n\nThe embers glow; no rain falls.\n", encoding="utf-8")
    assert main(["render", str(script), "--explain"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "(untitled): campfire <- fireside: 'fire' (line 1), 'embers' (line 3); "
        "not heard: 'rain' (line 3)"
    ]
    # --layers keeps what the words chose, and names it when asked for another.
    out = tmp_path / "x.wav"
    assert main(["render", str(script), "--layers", "waves", "-o", str(out)]) == 2
    assert "waves not in soundscape 'auto' (it has: campfire)" in capsys.readouterr().err
    assert not out.exists()
