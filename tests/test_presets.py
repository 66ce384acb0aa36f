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
