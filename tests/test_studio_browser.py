"""The studio's page in a real headless Chromium, against a real `meditation studio` process.

Playwright for Python drives Debian's ``chromium`` (Playwright's own browser
download is not reachable from here). Renders use the fast pyttsx3 voice and
a two-scene script, so the whole file runs in well under a minute of audio.
The render test takes the README's screenshot each time; it replaces
``docs/studio.png`` only when asked (``MEDITATION_UPDATE_SCREENSHOT=1``), so
a test run leaves the tree clean.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("starlette", reason="the studio extra is not installed")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install '.[test]')"
)


def _find_chromium() -> str | None:
    for candidate in (
        os.environ.get("MEDITATION_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = _find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (install Debian's chromium: apt-get install -y chromium)",
)

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "studio.png"

SCRIPT = """---
title: Evening rest
voice: pyttsx3
lead_in: 1
tail: 2
---

# Arriving

Let your shoulders drop. Breathe out slowly.

# The stream

Somewhere near, water is moving. Let it carry your thoughts.
"""

BROKEN_LINE = "Breathe out [paws 3s] slowly."


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A running `meditation studio` over a fresh folder: (address with token, folder)."""
    folder = tmp_path_factory.mktemp("studio-dir")
    process = subprocess.Popen(
        [sys.executable, "-m", "meditation", "studio", "--port", "0", "--dir", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://\S+", line)
        assert match, (
            f"no address printed: {line!r} {process.stderr.read() if process.poll() is not None else ''}"
        )
        yield match.group(0), folder
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, studio):
    url, _ = studio
    # bypass_csp: Playwright evaluates its waiting conditions as strings, which the page's policy forbids.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, bypass_csp=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("#check.good", timeout=20_000)  # the dream, checked
    yield page
    context.close()
    assert errors == [], errors


def _write(page, text: str, *, name: str = "calm.md") -> None:
    page.fill("#name", name)
    page.fill("#script", text)
    page.wait_for_function(
        "document.getElementById('check').textContent.includes('Evening rest')", timeout=10_000
    )


@pytest.mark.slow
def test_an_error_shows_at_its_line_and_goes_when_fixed(page):
    page.fill("#name", "calm.md")
    before, after = SCRIPT.split("Breathe out slowly.")
    page.fill("#script", before)
    page.click("#script")
    page.keyboard.press("Control+End")
    page.keyboard.type(BROKEN_LINE, delay=5)  # typed, so the check runs debounced as the user types
    check = page.wait_for_selector("#check.bad", timeout=10_000)
    message = check.text_content()
    assert message.startswith("calm.md:10:38: unknown directive [paws 3s]"), message
    assert page.get_attribute("#gutter .error", "data-line") == "10"
    assert page.locator("#gutter .error").count() == 1
    # Clicking the message puts the cursor at the error.
    page.click("#check")
    assert (
        page.evaluate(
            "document.getElementById('script').value.slice(0, document.getElementById('script').selectionStart).split('\\n').length"
        )
        == 10
    )
    # Fix it: the error and its mark go.
    page.fill("#script", SCRIPT)
    page.wait_for_selector("#check.good", timeout=10_000)
    assert "Evening rest: 2 scenes" in page.text_content("#check")
    assert page.locator("#gutter .error").count() == 0


@pytest.mark.slow
def test_preview_plays_the_scene_under_the_cursor(page, tmp_path):
    from meditation.render import render
    from meditation.script import parse_script
    from meditation.settings import resolve_settings

    _write(page, SCRIPT)
    page.click("#script")
    page.keyboard.press("Control+End")  # the last scene
    page.wait_for_function(
        "document.getElementById('scene-here').textContent === 'scene: The stream'"
    )
    page.click("#preview")
    page.wait_for_function(
        "document.getElementById('job').textContent.includes('Preview of The stream: 0:')",
        timeout=120_000,
    )
    page.wait_for_function(
        "(() => { const a = document.getElementById('player'); return a.readyState >= 2 && !a.paused && a.currentTime > 0.2; })()",
        timeout=30_000,
    )
    duration = page.evaluate("document.getElementById('player').duration")

    # The same scene alone through the Python API gives the length the page must play.
    alone = SCRIPT.split("# Arriving")[0] + "# The stream" + SCRIPT.split("# The stream")[1]
    script = parse_script(alone, path="calm.md")
    expected = render(
        resolve_settings({"output": tmp_path / "alone.wav"}, script), script
    ).duration_s
    assert duration == pytest.approx(expected, abs=0.05)
    assert duration < 14  # not the whole track


@pytest.mark.slow
def test_render_shows_progress_timeline_and_downloads_what_the_cli_renders(page, studio, tmp_path):
    url, folder = studio
    _write(page, SCRIPT)
    page.select_option("#c-soundscape", "stream")
    # A quieter river: saved as a preset in the folder, which becomes the soundscape setting.
    page.fill("#level-river", "-16")
    page.dispatch_event("#level-river", "change")
    page.wait_for_function(
        "document.getElementById('c-soundscape').value === 'calm-stream.toml'", timeout=10_000
    )
    assert page.input_value("#level-river") == "-16"
    page.fill("#c-seed", "7")
    page.dispatch_event("#c-seed", "change")
    page.select_option("#format", "wav")
    page.click("#save")
    page.wait_for_function(
        "document.getElementById('keep-status').textContent.startsWith('saved calm.md')"
    )
    assert (folder / "calm.md").read_text() == SCRIPT

    # Watch every value the progress bar takes.
    page.evaluate(
        """() => { const bar = document.getElementById('bar'); window.seen = [];
        new MutationObserver(() => window.seen.push(bar.value)).observe(bar, {attributes: true}); }"""
    )
    page.click("#render")
    page.wait_for_function(
        "document.getElementById('job').textContent.includes('Render of the whole track: 0:')",
        timeout=180_000,
    )
    seen = page.evaluate("window.seen")
    assert seen[-1] == 100 and any(0 < v < 100 for v in seen), seen
    assert seen == sorted(seen)
    assert page.text_content("#percent") == "100 %"

    # The timeline picture: both scenes, the spoken segments, the stream's layers, and a cursor that follows playback.
    assert page.locator("#timeline .scene").count() == 2
    assert page.locator("#timeline .segment").count() >= 4
    assert page.locator("#timeline .layer").count() >= 2
    page.wait_for_function("document.getElementById('player').currentTime > 1.0", timeout=30_000)
    assert float(page.get_attribute("#cursor", "x1")) > 90
    # The captions follow the voice under the player.
    page.wait_for_function(
        "document.getElementById('caption').textContent.length > 0", timeout=30_000
    )
    assert page.text_content("#caption").split()[0] in SCRIPT

    page.screenshot(path=str(tmp_path / "studio.png"), full_page=True)
    small = _small_png(tmp_path / "studio.png")
    assert 20_000 < len(small) < 250_000  # a real picture of the page, small enough for the README
    if os.environ.get("MEDITATION_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(small)

    with page.expect_download() as info:
        page.click("#download")
    downloaded = tmp_path / info.value.suggested_filename
    info.value.save_as(downloaded)
    assert downloaded.name == "calm.wav"

    # "Copy as command", run in the studio's folder, renders the same audio.
    page.click("#copy-command")
    page.wait_for_function(
        "document.getElementById('command').textContent.startsWith('meditation render')"
    )
    words = shlex.split(page.text_content("#command"))
    assert words[:5] == ["meditation", "render", "calm.md", "-o", "calm.wav"]
    assert (
        words[words.index("--soundscape") + 1] == "calm-stream.toml"
        and words[words.index("--seed") + 1] == "7"
    )
    words[4] = str(tmp_path / "cli.wav")
    subprocess.run([sys.executable, "-m", *words], cwd=folder, check=True, capture_output=True)
    ours, rate = sf.read(downloaded, dtype="int16")
    theirs, cli_rate = sf.read(tmp_path / "cli.wav", dtype="int16")
    assert rate == cli_rate and ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)


@pytest.mark.slow
def test_keep_saves_and_opens_scripts_settings_and_manifest_entries(page, studio):
    import tomllib

    _, folder = studio
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    _write(page, SCRIPT, name="keep.md")
    page.fill("#c-rate", "0.8")
    page.dispatch_event("#c-rate", "change")
    page.click("#save")
    page.wait_for_function("document.getElementById('keep-status').textContent === 'saved keep.md'")
    assert page.input_value("#settings-path") == "keep.toml"
    page.click("#save-settings")
    page.wait_for_function(
        "document.getElementById('keep-status').textContent.startsWith('saved keep.toml')"
    )
    assert tomllib.loads((folder / "keep.toml").read_text())["defaults"] == {
        "script": "keep.md",
        "rate": 0.8,
    }
    page.fill("#manifest-path", "keep-variants.toml")
    page.fill("#variant-name", "slow")
    page.click("#add-manifest")
    page.wait_for_function(
        "document.getElementById('keep-status').textContent.includes('1 variant(s)')"
    )
    assert tomllib.loads((folder / "keep-variants.toml").read_text())["variants"] == [
        {"name": "slow", "script": "keep.md", "rate": 0.8}
    ]

    # Change everything, then open what was kept.
    page.fill("#script", SCRIPT.replace("Evening rest", "Other"))
    page.locator(".control.set + .reset").first.click()  # unset the rate
    assert page.input_value("#c-rate") == ""
    page.select_option("#open", "keep.md")
    page.wait_for_function(
        "document.getElementById('keep-status').textContent === 'opened keep.md'"
    )
    assert page.input_value("#script") == SCRIPT
    page.select_option("#open", "keep.toml")
    page.wait_for_function("document.getElementById('c-rate').value === '0.8'")
    # Saving over a file asks first (Ctrl+S saves, as in any editor).
    page.fill("#script", SCRIPT + "\nOne more line.\n")
    page.keyboard.press("Control+s")
    page.wait_for_function("document.getElementById('keep-status').textContent === 'saved keep.md'")
    assert (folder / "keep.md").read_text().endswith("One more line.\n")
    assert asked == [
        "The script has unsaved changes. Open another and lose them?",
        "keep.md exists. Replace it?",
    ]


@pytest.mark.slow
def test_cancel_in_the_page_leaves_nothing(page, studio):
    _, folder = studio
    long = SCRIPT + "\n".join(
        f"\nSentence {i} drifts past like a leaf on the water." for i in range(30)
    )
    _write(page, long, name="long.md")
    page.click("#render")
    page.wait_for_function("document.getElementById('bar').value > 0", timeout=60_000)
    page.click("#cancel")
    page.wait_for_function(
        "document.getElementById('job').textContent.includes('cancelled; nothing was kept')",
        timeout=30_000,
    )
    assert page.evaluate("document.getElementById('bar').value") == 0
    assert not list(folder.glob("long*"))


def _small_png(png: Path) -> bytes:
    """The README's picture, kept small: a 128-colour palette."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_render_and_preview_are_in_view_on_a_laptop_screen_with_the_dream_loaded(
    browser, studio, tmp_path
):
    url, _ = studio
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#check.good", timeout=20_000)  # the dream, checked
        assert page.input_value("#script").count("\n") > 40  # a long script fills the editor
        picture = Path(os.environ.get("MEDITATION_LAYOUT_SHOT", tmp_path / "layout.png"))
        page.screenshot(
            path=str(picture)
        )  # what a newcomer sees first (look at it when changing the CSS)
        for button in ("#render", "#preview", "#cancel", "#format"):
            box = page.locator(button).bounding_box()
            assert box is not None and box["y"] >= 0, button
            assert box["y"] + box["height"] <= 800, (button, box)
        assert page.evaluate("window.scrollY") == 0
        # The editor keeps a useful height, and the script's first lines show in it.
        assert page.locator("#script").bounding_box()["height"] >= 240
    finally:
        context.close()


SPEAKERS_SCRIPT = """---
title: Evening rest
speakers: {guide: pyttsx3, echo: pyttsx3 pan=-0.5}
lead_in: 1
tail: 2
soundscape: none
---

Guide: Let your shoulders drop.

Echo: Breathe out slowly.
"""


@pytest.mark.slow
def test_the_speakers_box_lists_the_scripts_speakers_and_renders_each_with_its_voice(page):
    assert page.locator("#speakers select").count() == 0  # the dream names no speakers
    _write(page, SPEAKERS_SCRIPT, name="two.md")
    page.wait_for_selector("#speaker-echo", timeout=10_000)
    assert page.locator("#speakers select").count() == 2
    assert page.locator("#speakers label").all_text_contents() == ["guide", "echo"]
    # Unset, each shows the script's voice; every usable voice is offered.
    assert page.locator("#speaker-guide option").first.text_content() == "pyttsx3 (script)"
    assert page.locator("#speaker-echo option[value='hibari:heart']").count() == 1
    page.select_option("#speaker-echo", "hibari:heart")
    page.select_option("#format", "wav")
    page.click("#render")
    page.wait_for_function(
        "document.getElementById('job').textContent.includes('Render of the whole track: 0:')",
        timeout=180_000,
    )
    result = page.evaluate("state.result")
    assert result["settings"]["speakers"].endswith("echo: hibari:heart pan=-0.5")
    assert [g["speaker"] for g in result["timeline"]["segments"]] == ["guide", "echo"]
