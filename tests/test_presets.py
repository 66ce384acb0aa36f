"""Soundscape presets: one source of truth, a generated reference, and mistakes that are not silent."""

from pathlib import Path

from meditation.soundscape import PRESET_DIRS, list_presets

REPO = Path(__file__).resolve().parent.parent


def test_the_presets_listed_come_from_the_top_level_soundscapes_folder():
    # The package's presets are the top-level folder (a symlink in the checkout, copied into
    # a wheel), so editing soundscapes/NAME.toml changes what `--soundscape NAME` plays.
    top = (REPO / "soundscapes").resolve()
    assert [Path(d).resolve() for d in PRESET_DIRS] == [top]
    presets = list_presets()
    assert {p.name for p in presets} >= {"dream", "stream", "default"}
    for preset in presets:
        assert preset.path.resolve().parent == top, preset.path
    shipped = {p.stem for p in top.glob("*.toml")}
    assert {p.path.stem for p in presets} == shipped


def test_the_readme_preset_reference_is_the_layers_declarations():
    import dataclasses

    from meditation.soundscape.layers import LAYERS
    from meditation.soundscape.reference import field_docs, readme_reference

    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- preset reference:")
    start = text.index("\n", start) + 1
    end = text.index("<!-- end of preset reference -->")
    assert text[start:end].rstrip("\n") == readme_reference(), (
        "README preset reference is stale: run python -m meditation.soundscape.reference --readme"
    )
    # Every declared parameter is documented: a new field without a docstring fails here.
    for name, cls in LAYERS.items():
        docs = field_docs(cls)
        for field in dataclasses.fields(cls.Params):
            assert docs.get(field.name), (
                f"layer {name!r}: parameter {field.name!r} has no docstring"
            )
            assert f"| `{field.name}` |" in text[start:end]
    # The format's keys are all shown.
    for key in ("[scenes.", "fade_s", "[[cues]]", "at_scene", "at_text", "offset_s", "[voice]"):
        assert key in text[start:end], key


_SCRIPT = "# Arriving\n\nBreathe in.\n\n# Resting by the water\n\nRest here.\n"


def _preset(tmp_path, scene):
    path = tmp_path / "valley.toml"
    path.write_text(
        f'[layers.drone]\nlevel_db = -12.0\n\n[scenes."{scene}"]\ndrone = 0.0\n', encoding="utf-8"
    )
    return path


def test_a_scene_name_with_a_typo_is_refused_naming_the_closest_heading(tmp_path, capsys):
    from meditation.cli import main

    script = tmp_path / "s.md"
    script.write_text(_SCRIPT, encoding="utf-8")
    out = tmp_path / "s.wav"
    code = main(
        [str(script), "--soundscape", str(_preset(tmp_path, "Resting by the watr")), "-o", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "'Resting by the water'" in err and "watr" in err, err
    assert not out.exists()


def test_a_cue_anchor_with_a_typo_is_refused_too(tmp_path):
    import pytest

    from meditation.errors import SoundscapeError
    from meditation.soundscape import check_scene_names, load_preset

    path = tmp_path / "cue.toml"
    path.write_text(
        '[layers.bell]\n\n[[cues]]\nlayer = "bell"\naction = "strike"\nat_scene = "Arriveing"\n',
        encoding="utf-8",
    )
    with pytest.raises(SoundscapeError, match="did you mean 'Arriving'"):
        check_scene_names(load_preset(str(path)), ["Arriving", "Resting by the water"])


def test_a_preset_for_another_script_warns_in_one_line_and_plays(tmp_path, capsys):
    from meditation.cli import main

    script = tmp_path / "s.md"
    script.write_text(_SCRIPT, encoding="utf-8")
    out = tmp_path / "s.wav"
    # A user's preset written for another script: nothing matches, nothing is a near miss.
    other = tmp_path / "elsewhere.toml"
    other.write_text(
        'name = "elsewhere"\n[layers.drone]\nlevel_db = -12.0\n\n[scenes."The library"]\ndrone = 0.0\n',
        encoding="utf-8",
    )
    code = main(
        [str(script), "--soundscape", str(other), "--voice", "pyttsx3", "-o", str(out)]
        + ["--progress", "off"]
    )
    err = capsys.readouterr().err
    assert code == 0 and out.exists()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("meditation: warning: ")
    assert "'elsewhere' names no heading" in lines[0]
    # A shipped preset says how it plays under any script (the dream's, here): no warning.
    code = main(
        [str(script), "--soundscape", "dream", "--voice", "pyttsx3", "-o", str(tmp_path / "d.wav")]
        + ["--progress", "off"]
    )
    assert code == 0 and capsys.readouterr().err == ""
    # A preset that matches one heading says nothing.
    code = main(
        [str(script), "--soundscape", str(_preset(tmp_path, "resting BY the water"))]
        + ["--voice", "pyttsx3", "-o", str(tmp_path / "t.wav"), "--progress", "off"]
    )
    assert code == 0 and capsys.readouterr().err == ""


def test_soundscapes_name_shows_the_layers_levels_params_scenes_and_cues(capsys):
    from meditation.cli import main

    assert main(["soundscapes", "dream"]) == 0
    out = capsys.readouterr().out
    layers = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    # Each layer with its level and the parameters the preset sets (marked) or leaves at defaults.
    assert "level_db -13" in layers["drone"] and "root_hz=98*" in layers["drone"]
    assert "gustiness=0.7*" in layers["wind"] and "travel_s=0.6 " in layers["wind"] + " "
    assert "'the flight': wind +0, river -14, drone -8; fade_s 6" in out
    assert "wings beats {'count': 6}, at_text 'lifts us into the air'" in out
    assert "bell strike, at_scene 'The awakening' +1 s" in out
    assert f"file: {REPO / 'soundscapes' / 'dream.toml'}" in out


def test_soundscapes_with_an_unknown_name_is_one_line(capsys):
    from meditation.cli import main

    assert main(["soundscapes", "jungle"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown soundscape 'jungle'" in err


def test_front_matter_cover_and_bed_are_found_beside_the_script(tmp_path, monkeypatch, capsys):
    # Run from another folder: the script's own files are beside it, not in the working folder.
    import mutagen
    import numpy as np
    import soundfile as sf
    from PIL import Image

    from meditation.cli import main

    folder = tmp_path / "session"
    folder.mkdir()
    Image.new("RGB", (32, 24), (40, 90, 160)).save(folder / "art.png")
    noise = np.random.default_rng(1).standard_normal((3 * 44100, 2)).astype(np.float32) * 0.1
    sf.write(folder / "rain.wav", noise, 44100)
    script = folder / "s.md"
    script.write_text("---\ncover: art.png\nbed: rain.wav:-12\n---\nRest here.\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "s.ogg"
    code = main(
        [str(script), "--voice", "pyttsx3", "--soundscape", "none", "-o", str(out)]
        + ["--progress", "off", "--timings", str(tmp_path / "s.json")]
    )
    assert code == 0, capsys.readouterr().err
    assert mutagen.File(out).tags.get("metadata_block_picture")
    import json

    timings = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert timings["scenes"][0]["layers"] == ["bed"]  # the recording beside the script plays


def test_the_studio_finds_front_matter_files_in_its_folder(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    from meditation.studio.shape import resolve

    folder = tmp_path / "studio"
    folder.mkdir()
    noise = np.random.default_rng(1).standard_normal((3 * 44100, 2)).astype(np.float32) * 0.1
    sf.write(folder / "rain.wav", noise, 44100)
    monkeypatch.chdir(tmp_path)  # not the studio's folder
    settings, _ = resolve(
        "---\nbed: rain.wav\n---\nRest.\n",
        {"voice": "pyttsx3"},
        name="job.md",
        output=tmp_path / "o.wav",
        folder=folder,
    )
    assert settings.bed == (folder / "rain.wav").resolve()
