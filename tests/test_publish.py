"""Publication settings in batch manifests: captions, cover, chapters and plot per variant, beside each output."""

from pathlib import Path

import pytest
from ffmpeg import attached_picture, ffmpeg_chapters
from published import cover_png

from meditation.cli import main
from meditation.publish import beside_output
from meditation.settings import RenderSettings

SCRIPT = "# Arriving\n\nBreathe in.\n\n# Resting\n\nBreathe out.\n"
MANIFEST = """
output = "{name}.mp3"

[defaults]
script = "s.md"
voice = "pyttsx3"
soundscape = "none"
lead_in = 1
tail = 1

[[variants]]
name = "a"
captions = "vtt"
cover = "cover.png"
chapters = false
plot = true

[[variants]]
name = "b"
captions = "%s"
"""


def _batch(folder: Path, capsys) -> str:
    assert main(["batch", str(folder / "m.toml"), "-j", "1", "--progress", "off"]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_manifest_asks_for_publication_files_per_variant_and_changes_re_render(tmp_path, capsys):
    (tmp_path / "s.md").write_text(SCRIPT, encoding="utf-8")
    cover_png(tmp_path / "cover.png")
    (tmp_path / "m.toml").write_text(MANIFEST % "srt", encoding="utf-8")
    assert _batch(tmp_path, capsys) == "2 rendered, 0 failed, 0 skipped"
    # Beside each output, with its name: a.vtt and a.png, b.srt; the cover is read beside the manifest.
    assert {p.name for p in tmp_path.iterdir()} >= {"a.mp3", "a.vtt", "a.png", "b.mp3", "b.srt"}
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "b.vtt").exists()
    assert (
        attached_picture(tmp_path / "a.mp3") == "png 96x96"
        and attached_picture(tmp_path / "b.mp3") is None
    )
    assert ffmpeg_chapters(tmp_path / "a.mp3") == []  # chapters = false
    assert [t for _, t in ffmpeg_chapters(tmp_path / "b.mp3")] == ["Arriving", "Resting"]
    assert (tmp_path / "a.vtt").read_text(encoding="utf-8").startswith("WEBVTT")

    assert _batch(tmp_path, capsys) == "0 rendered, 0 failed, 2 skipped"

    # A changed cover image (same name) re-renders the variant that embeds it, and only that one.
    from PIL import Image

    Image.new("RGB", (32, 32), (10, 200, 90)).save(tmp_path / "cover.png")
    assert _batch(tmp_path, capsys) == "1 rendered, 0 failed, 1 skipped"
    assert attached_picture(tmp_path / "a.mp3") == "png 32x32"

    # A changed caption setting re-renders that variant.
    (tmp_path / "m.toml").write_text(MANIFEST % "vtt", encoding="utf-8")
    assert _batch(tmp_path, capsys) == "1 rendered, 0 failed, 1 skipped"
    assert (tmp_path / "b.vtt").exists()


@pytest.mark.parametrize(
    "captions, plot, expected",
    [
        ("vtt", "png", ("out/track.vtt", "out/track.png")),
        ("srt", "true", ("out/track.srt", "out/track.png")),
        ("VTT", "svg", ("out/track.vtt", "out/track.svg")),
        ("notes/c.vtt", "pics/p.pdf", ("notes/c.vtt", "pics/p.pdf")),  # real paths stay as given
    ],
)
def test_a_bare_format_name_means_beside_the_output(captions, plot, expected):
    settings = RenderSettings(
        output=Path("out/track.m4b"), captions=Path(captions), plot=Path(plot)
    )
    resolved = beside_output(settings)
    assert (str(resolved.captions), str(resolved.plot)) == expected
    assert beside_output(RenderSettings(output=Path("x.mp3"))) == RenderSettings(
        output=Path("x.mp3")
    )
