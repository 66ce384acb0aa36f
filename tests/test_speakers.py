"""Speakers (issue 19 §3): a script gives its paragraphs named voices, and each is heard, stemmed
and captioned as itself."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ffmpeg import ebur128, ffmpeg

from meditation.captions import format_captions, plan_cues
from meditation.errors import ScriptError, SettingsError
from meditation.mix import DuckEnvelope, Ducking
from meditation.script import parse_script
from meditation.segments import plan_segments
from meditation.settings import resolve_settings
from meditation.timeline import layout

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """\
    ---
    title: Two voices
    speakers:
      guide: piper:joe
      echo: hibari:heart level=-6 pan=0.5
    ---
    # Opening
    Guide: Sit comfortably, and let your shoulders soften.
    Echo: Breathe with me, slowly.
    Note: the air is cool.

    Guide: Notice the air as it comes in.

    Echo: And warm as it goes out again.
    """
)
FAST = ["--lead-in", "1", "--tail", "2", "--sample-rate", "24000", "--no-cache"]


def _meditation(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "meditation", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The two-speaker script rendered twice: with stems, WebVTT and timings (2 speech jobs),
    and again with SubRip captions (1 speech job)."""
    folder = tmp_path_factory.mktemp("speakers")
    (folder / "two.md").write_text(SCRIPT, encoding="utf-8")
    first = _meditation(
        "render", "two.md", "-o", "a.wav", "--stems", "stems", "--captions", "a.vtt",
        "--timings", "a.json", "--speech-jobs", "2", *FAST, cwd=folder,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    second = _meditation(
        "render", "two.md", "-o", "b.wav", "--captions", "b.srt", "--speech-jobs", "1", *FAST,
        cwd=folder,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    return folder


def _db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def test_each_speaker_has_a_stem_that_holds_its_words_and_silence_under_the_others(rendered):
    timings = json.loads((rendered / "a.json").read_text())
    segments = timings["segments"]
    assert [s["speaker"] for s in segments] == ["guide", "echo", "echo", "guide", "echo"]
    assert segments[2]["text"] == "Note: the air is cool."  # a colon after an undeclared word: text
    stems = sorted(p.name for p in (rendered / "stems").glob("voice*.wav"))
    assert stems == ["voice-echo.wav", "voice-guide.wav"]
    guide, sr = sf.read(rendered / "stems" / "voice-guide.wav", dtype="float32")
    echo, _ = sf.read(rendered / "stems" / "voice-echo.wav", dtype="float32")
    assert sr == 24000 and len(guide) == len(echo)
    assert abs(len(guide) - timings["duration"] * sr) < 3  # the JSON rounds to 0.1 ms
    own = {"guide": guide, "echo": echo}
    for s in segments:
        span = slice(round(s["start"] * sr), round(s["end"] * sr))
        other = echo if s["speaker"] == "guide" else guide
        assert _db(own[s["speaker"]][span]) > -40, s
        peak = float(np.max(np.abs(other[span])))
        assert peak == 0.0 or 20 * np.log10(peak) < -60, (s, peak)
    # Echo sits at pan 0.5: its left ear at half its right; the guide in the middle.
    echo_lr = np.sqrt(np.mean(np.square(echo, dtype=np.float64), axis=0))
    guide_lr = np.sqrt(np.mean(np.square(guide, dtype=np.float64), axis=0))
    assert echo_lr[0] / echo_lr[1] == pytest.approx(
        0.5, abs=0.02
    )  # the reverb differs a little by ear
    assert guide_lr[0] / guide_lr[1] == pytest.approx(1.0, abs=0.02)

    def speech_db(stem, who):
        parts = [
            stem[round(s["start"] * sr) : round(s["end"] * sr), 1]
            for s in segments
            if s["speaker"] == who
        ]
        return _db(np.concatenate(parts))

    # level=-6 (echo's right ear is at full balance): each speaker is first set to the same speech level.
    assert speech_db(echo, "echo") - speech_db(guide, "guide") == pytest.approx(-6, abs=2)
    loudness, _ = ebur128(rendered / "a.wav")
    assert abs(loudness + 16) <= 0.5


def test_webvtt_cues_name_their_speaker_in_voice_tags_ffmpeg_reads(rendered):
    timings = json.loads((rendered / "a.json").read_text())
    # ffmpeg's WebVTT demuxer reads each cue; copied back out, each keeps its <v> span.
    copied = subprocess.run(
        [
            ffmpeg(),
            "-v",
            "error",
            "-i",
            str(rendered / "a.vtt"),
            "-c:s",
            "copy",
            "-f",
            "webvtt",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    cues = [block.splitlines() for block in copied.strip().split("\n\n")[1:]]
    assert len(cues) >= len(timings["segments"])
    said = [cue[1].split(">")[0] + ">" for cue in cues]
    assert set(said) == {"<v Guide>", "<v Echo>"}
    first_words = {s["text"].split()[0]: s["speaker"] for s in timings["segments"]}
    for cue in cues:
        tag, _, text = cue[1].partition(">")
        if text.split()[0] in first_words:
            assert tag == f"<v {first_words[text.split()[0]].title()}"


def test_subrip_cues_begin_with_the_speakers_name(rendered):
    text = (rendered / "b.srt").read_text()
    blocks = [b.splitlines() for b in text.strip().split("\n\n")]
    assert blocks[0][2].startswith("Guide: Sit comfortably")
    assert blocks[1][2].startswith("Echo: Breathe with me")
    assert all(b[2].split(":")[0] in ("Guide", "Echo") for b in blocks)


def test_two_renders_with_one_or_two_speech_jobs_are_bit_identical(rendered):
    assert (rendered / "a.wav").read_bytes() == (rendered / "b.wav").read_bytes()


@pytest.mark.parametrize(
    "front, where, says",
    [
        ("speakers: {guide: piper:joe, echo: hibari:emma}", ":2:30:", "not installed"),
        ("speakers: {guide: piper:joe, echo: nobody:x}", ":2:30:", "unknown voice"),
        ("speakers: {guide: piper:joe, echo: hibari:heart level=loud}", ":2:49:", "not a number"),
        ("speakers: {guide: piper:joe, echo: hibari:heart pan=3}", ":2:49:", "out of range"),
        (
            "speakers:\n  guide: piper:joe\n  echo: hibari:heart chain=cathedral",
            ":4:3:",
            "cathedral",
        ),
        ("speakers: {guide: piper:joe, guide: hibari:heart}", ":2:", "declared twice"),
        ("speakers: {narrator: piper:joe}", ":2:12:", "default speaker"),
    ],
)
def test_a_bad_speaker_is_one_line_at_its_place_and_nothing_is_written(
    tmp_path, front, where, says
):
    (tmp_path / "bad.md").write_text(f"---\n{front}\n---\nGuide: Sit.\n", encoding="utf-8")
    result = _meditation("render", "bad.md", "-o", "bad.wav", "--soundscape", "none", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"bad.md{where}" in lines[0] and says in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.md"]


def test_given_speakers_replace_the_scripts_and_undeclared_ones_are_refused(tmp_path):
    script = parse_script(SCRIPT, path="two.md")
    settings = resolve_settings({"speakers": {"echo": "pyttsx3 rate=1.1"}}, script)
    # What a given entry says replaces the script's; the rest (level, pan) stays.
    assert settings.speakers == "guide: piper:joe, echo: pyttsx3 rate=1.1 level=-6 pan=0.5"
    with pytest.raises(SettingsError, match="'bob' is not declared"):
        resolve_settings({"speakers": "bob: piper:joe"}, script)
    with pytest.raises(SettingsError, match="declares no speakers"):
        resolve_settings({"speakers": "echo: piper:joe"}, parse_script("Sit.\n"))
    # A typo of a declared name at the start of a line would silently be the narrator's.
    with pytest.raises(ScriptError, match=r"two.md:12:1: 'Guid' is not a declared speaker"):
        parse_script(SCRIPT.replace("Guide: Notice", "Guid: Notice"), path="two.md")


def test_a_manifest_variant_gives_a_speaker_another_voice(tmp_path):
    (tmp_path / "two.md").write_text(SCRIPT, encoding="utf-8")
    (tmp_path / "batch.toml").write_text(
        textwrap.dedent(
            """\
            output = "{name}.mp3"
            [defaults]
            script = "two.md"
            [[variants]]
            name = "as-written"
            [[variants]]
            name = "espeak-echo"
            speakers = {echo = "pyttsx3 level=-2"}
            """
        ),
        encoding="utf-8",
    )
    result = _meditation("batch", "batch.toml", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    from meditation.batch.manifest import iter_manifest  # noqa: PLC0415 - only this test expands one

    variants = {v.name: v.settings.speakers for v in iter_manifest(tmp_path / "batch.toml")}
    assert variants["as-written"] == "guide: piper:joe, echo: hibari:heart level=-6 pan=0.5"
    guide, echo = variants["espeak-echo"].split(", ")
    assert guide == "guide: piper:joe"
    assert echo.startswith("echo: pyttsx3:") and echo.endswith(" level=-2 pan=0.5")  # resolved
    # A speaker's voice that is not installed stops the batch before any variant renders.
    bad = (tmp_path / "batch.toml").read_text().replace('"pyttsx3 level=-2"', '"hibari:emma"')
    (tmp_path / "bad.toml").write_text(bad, encoding="utf-8")
    result = _meditation("batch", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "bad.toml: variant 'espeak-echo': speakers: 'echo'" in result.stderr
    assert "not installed" in result.stderr
    assert not list(tmp_path.glob("*.mp3"))


def test_the_soundscape_ducks_under_every_speaker():
    script = parse_script(SCRIPT)
    planned = plan_segments(script, rate=1.0)
    lengths = [24000 * 2] * sum(1 for s in planned if s.spoken)
    timeline = layout(
        planned, lengths, sample_rate=24000, lead_in_s=1, tail_s=1, scene_names=["Opening"]
    )
    duck = DuckEnvelope(timeline, Ducking(depth_db=6.0))
    low = 10 ** (-6 / 20)
    for who in ("guide", "echo"):
        mine = [s for s in timeline.segments if s.speaker == who]
        assert mine
        for s in mine:
            assert duck.gain(s.start + s.length // 2, 1)[0] == pytest.approx(low, rel=1e-4)
    # and up again in the paragraph gap after the guide's second paragraph
    after = next(s for s in timeline.segments if s.text.startswith("Notice"))
    assert duck.gain(after.end + 24000 * 2, 1)[0] == pytest.approx(1.0)


def test_one_speaker_keeps_todays_captions_without_names():
    script = parse_script("Sit comfortably.\n\nLet go.\n")
    planned = plan_segments(script, rate=1.0)
    timeline = layout(
        planned, [4800, 4800], sample_rate=24000, lead_in_s=1, tail_s=1, scene_names=[""]
    )
    cues = plan_cues(timeline)
    assert "<v" not in format_captions(cues, ".vtt")
    assert format_captions(cues, ".srt").splitlines()[2] == "Sit comfortably."
    assert {s["speaker"] for s in timeline.to_dict()["segments"]} == {"narrator"}


def test_the_studio_lists_the_speakers_and_renders_each_with_the_voice_assigned(tmp_path):
    pytest.importorskip("starlette", reason="the studio extra is not installed")
    from starlette.testclient import TestClient  # noqa: PLC0415 - the studio extra is optional

    from meditation.studio import create_app  # noqa: PLC0415 - the studio extra is optional

    text = textwrap.dedent(
        """\
        ---
        speakers: {guide: pyttsx3, echo: pyttsx3 pan=-0.5}
        lead_in: 0.5
        tail: 1
        soundscape: none
        ---
        Guide: Let your shoulders drop.

        Echo: Breathe out slowly.
        """
    )
    token, host = "test-token-0123456789", "127.0.0.1:8765"
    app = create_app(tmp_path, token=token, hosts=[host])
    with TestClient(app, base_url=f"http://{host}", headers={"X-Studio-Token": token}) as client:
        checked = client.post("/api/check", json={"text": text, "name": "two.md"}).json()
        assert checked["speakers"] == [
            {"name": "guide", "voice": "pyttsx3", "line": 2},
            {"name": "echo", "voice": "pyttsx3", "line": 2},
        ]
        controls = {c["key"]: c["kind"] for c in client.get("/api/options").json()["controls"]}
        assert controls["speakers"] == "speakers"
        body = {"kind": "render", "text": text, "name": "two.md", "format": "wav"}
        refused = client.post("/api/jobs", json={**body, "values": {"speakers": {"bob": "piper"}}})
        assert refused.status_code == 400 and "'bob' is not declared" in refused.json()["error"]
        response = client.post(
            "/api/jobs", json={**body, "values": {"speakers": {"echo": "hibari:heart"}}}
        )
        assert response.status_code == 202, response.text
        job = response.json()["id"]
        with client.stream("GET", f"/api/jobs/{job}/events") as events:
            snapshots = [
                json.loads(line[6:]) for line in events.iter_lines() if line[:6] == "data: "
            ]
        done = snapshots[-1]
        assert done["state"] == "done", done
        # The voice assigned, the pan the script gave kept.
        assert done["result"]["settings"]["speakers"].endswith("echo: hibari:heart pan=-0.5")
        said = [g["speaker"] for g in done["result"]["timeline"]["segments"]]
        assert said == ["guide", "echo"]


@pytest.mark.slow
def test_a_pace_in_words_per_minute_is_kept_by_each_speakers_voice(tmp_path):
    from meditation.pace import count_words  # noqa: PLC0415 - only this test counts words

    (tmp_path / "two.md").write_text(SCRIPT, encoding="utf-8")
    result = _meditation(
        "render", "two.md", "-o", "w.wav", "--timings", "w.json", "--wpm", "150",
        "--soundscape", "none", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    segments = json.loads((tmp_path / "w.json").read_text())["segments"]
    for who in ("guide", "echo"):  # joe and heart, each paced on its own words
        said = [s for s in segments if s["speaker"] == who]
        words = sum(count_words(s["text"]) for s in said)
        seconds = sum(s["end"] - s["start"] for s in said)
        assert 60 * words / seconds == pytest.approx(150, rel=0.05), who


def test_marks_start_a_speakers_paragraph_until_a_blank_line_a_heading_or_another_mark():
    script = parse_script(
        textwrap.dedent(
            """\
            ---
            speakers:
              Guide: piper:joe rate=0.8 chain=room
              echo: hibari:heart
            ---
            guide: Sit.
            And rest.
            ECHO:
            Breathe with me. [breathe 4-4 x1 cues]
            Guide: Let go.
            # Later
            Unmarked, after a heading.

            Echo: Again.

            Said by the narrator: a colon is text.
            """
        ),
        path="marks.md",
    )
    assert [(s.name, s.rate, s.chain) for s in script.speakers] == [
        ("Guide", 0.8, "room"),
        ("echo", None, None),
    ]
    assert script.speaker_places == {"guide": (3, 3), "echo": (4, 3)}
    said = [(s.speaker, s.text) for s in plan_segments(script, rate=1.0) if s.spoken]
    assert said == [
        ("Guide", "Sit."),
        ("Guide", "And rest."),
        ("echo", "Breathe with me."),
        ("echo", "In"),
        ("echo", "Out"),
        ("Guide", "Let go."),
        ("", "Unmarked, after a heading."),
        ("echo", "Again."),
        ("", "Said by the narrator: a colon is text."),
    ]
    with pytest.raises(
        ScriptError, match=r"marks.md:3:1: front matter key 'speakers' is given twice"
    ):
        parse_script(
            "---\nspeakers: {a: piper}\nspeakers: {b: piper}\n---\nA: hi.\n", path="marks.md"
        )


def test_the_tags_name_every_speakers_voice_not_only_the_narrators(tmp_path):
    # The comment said "voice piper:joe" for a track spoken by two eSpeak voices and no joe.
    import mutagen

    from meditation.cli import main

    script = tmp_path / "s.md"
    script.write_text(
        "---\nspeakers: {guide: pyttsx3, echo: pyttsx3:gmw/en-us level=-6}\nsoundscape: none\n---\n"
        "Guide: Sit down.\nEcho: Breathe out.\n",
        encoding="utf-8",
    )
    out = tmp_path / "s.mp3"
    assert main(["render", str(script), "--sample-rate", "16000", "-o", str(out)]) == 0
    comment = str(mutagen.File(out).tags.getall("COMM")[0])
    assert "speakers (guide: pyttsx3:gmw/en-us, echo: pyttsx3:gmw/en-us level=-6)" in comment
    x, _ = sf.read(out)
    assert _db(x) > -40  # spoken
