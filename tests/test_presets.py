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
