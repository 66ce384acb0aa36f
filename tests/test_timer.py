"""`meditation timer`: a sit between bells, the bells where the plan puts them (issue 22, part 2)."""

import json

import numpy as np
import pytest
import soundfile as sf
from ffmpeg import ffmpeg_chapters
from PIL import Image

from meditation.cli import main


def strike_onsets_s(path) -> list[float]:
    """Onset of every strike in a bell stem: where the level first jumps well above the 10-20 ms before it.

    A strike rises from (near) silence or from the fading tail of the last
    one in a few milliseconds (a soft mallet); the onset is the first sample
    over a tenth of the strike's first 50 ms peak.
    """
    x, sr = sf.read(path, dtype="float64")
    level = np.abs(x).max(axis=1)
    per_ms = sr // 1000
    n = len(level) // per_ms
    frames = level[: n * per_ms].reshape(n, per_ms).max(axis=1)
    found: list[int] = []
    for k in range(20, n):
        jumps = frames[k] > 3 * frames[k - 20 : k - 10].max() + 1e-4
        if jumps and frames[k] > 0.05 * frames.max() and (not found or k - found[-1] > 200):
            found.append(k)
    onsets = []
    for k in found:
        begin = (k - 12) * per_ms
        window = level[begin : begin + sr // 20]
        onsets.append((begin + int(np.argmax(window > 0.1 * window.max()))) / sr)
    return onsets


def _timer(tmp_path, *args, name="sit.mp3"):
    out = tmp_path / name
    stems = tmp_path / "stems"
    timings = tmp_path / "sit.json"
    code = main(
        [
            "timer",
            *args,
            "-o",
            str(out),
            "--stems",
            str(stems),
            "--timings",
            str(timings),
            "--progress",
            "off",
        ]
    )
    assert code == 0
    return out, stems, json.loads(timings.read_text())


def _planned(sit_s, interval_s, strikes=3, lead_s=2.0, spacing_s=5.0):
    """The documented plan: the opening bell 2 s in, one per interval, the closing strikes 5 s apart."""
    bells = [lead_s + k * interval_s for k in range(int(round(sit_s / interval_s)))]
    return bells + [lead_s + sit_s + k * spacing_s for k in range(strikes)]


def test_a_twenty_minute_sit_has_its_bells_within_10_ms_of_the_plan_and_a_chapter_at_each(
    tmp_path,
):
    out, stems, timings = _timer(tmp_path, "20m", "--interval", "5m", "--sample-rate", "8000")
    expected = _planned(20 * 60, 5 * 60)
    assert len(expected) == 7  # opening, three intervals, three closing strikes
    onsets = strike_onsets_s(stems / "bell.wav")
    assert len(onsets) == len(expected), onsets
    assert np.max(np.abs(np.subtract(onsets, expected))) < 0.010, (onsets, expected)
    assert timings["layers"]["bell"]["cues"] == pytest.approx(expected, abs=1e-3)
    chapters = ffmpeg_chapters(out)
    assert [t for _, t in chapters] == ["Opening bell", "5:00", "10:00", "15:00", "Closing bell"]
    assert [s for s, _ in chapters] == pytest.approx([0.0, 302.0, 602.0, 902.0, 1202.0], abs=0.01)
    # Between the bells the sit is silent: nothing but the fading bell.
    audio, sr = sf.read(stems / "bell.wav", dtype="float64")
    quiet = audio[int(250 * sr) : int(300 * sr)]
    assert np.sqrt(np.mean(quiet**2)) < 1e-4


def test_times_given_with_at_and_a_chime_of_one_closing_strike(tmp_path):
    out, stems, timings = _timer(
        tmp_path,
        "90s",
        "--at",
        "20s,1m",
        "--bell",
        "chime",
        "--closing-strikes",
        "1",
        "--sample-rate",
        "8000",
    )
    expected = [2.0, 22.0, 62.0, 92.0]
    onsets = strike_onsets_s(stems / "bell.wav")
    assert np.max(np.abs(np.subtract(onsets, expected))) < 0.010, onsets
    assert [t for _, t in ffmpeg_chapters(out)] == ["Opening bell", "0:20", "1:00", "Closing bell"]
    # A chime is a small high bell: its energy sits far above a bowl's 220 Hz.
    audio, sr = sf.read(stems / "bell.wav", dtype="float64")
    spectrum = np.abs(np.fft.rfft(audio[int(2 * sr) : int(4 * sr), 0]))
    assert np.fft.rfftfreq(int(2 * sr), 1 / sr)[np.argmax(spectrum)] > 900


def test_spoken_lines_come_before_the_first_bell_and_after_the_last_and_the_bed_dips_under_strikes(
    tmp_path,
):
    out, stems, timings = _timer(
        tmp_path,
        "40s",
        "--interval",
        "20s",
        "--soundscape",
        "stream",
        "--open",
        "Let us begin.",
        "--close",
        "May you be well.",
        "--sample-rate",
        "16000",
    )
    opening, closing = timings["segments"]
    strikes = timings["layers"]["bell"]["cues"]
    assert opening["text"] == "Let us begin." and closing["text"] == "May you be well."
    assert opening["end"] + 2.9 < strikes[0] and strikes[-1] + 2.9 < closing["start"]
    onsets = strike_onsets_s(stems / "bell.wav")
    assert np.max(np.abs(np.subtract(onsets, strikes))) < 0.010
    river, sr = sf.read(stems / "river.wav", dtype="float64")

    def level_db(t0, t1):
        part = river[int(t0 * sr) : int(t1 * sr)]
        return 10 * np.log10(np.mean(part**2))

    bell = strikes[1]  # the interval bell, far from the voice
    assert level_db(bell + 0.2, bell + 2.0) < level_db(bell - 6.0, bell - 2.0) - 5.0
    # ...and comes back as the bell fades.
    assert abs(level_db(bell + 10.0, bell + 14.0) - level_db(bell - 6.0, bell - 2.0)) < 2.0
    voice, _ = sf.read(stems / "voice.wav", dtype="float64")
    assert np.abs(voice[int(opening["start"] * sr) : int(opening["end"] * sr)]).max() > 0.01


def test_the_same_timer_is_the_same_audio_bit_for_bit(tmp_path):
    def once(name):
        out = tmp_path / name
        args = ["timer", "30s", "--interval", "10s", "--soundscape", "stream", "--bell", "bell"]
        assert main([*args, "--sample-rate", "8000", "-o", str(out), "--progress", "off"]) == 0
        return out.read_bytes()

    assert once("a.wav") == once("b.wav")


@pytest.mark.parametrize(
    "args, says",
    [
        (["0"], "out of range"),
        (["soon"], "must be a duration"),
        (["10m", "--interval", "0"], "--interval 0 is out of range"),
        (["10m", "--interval", "10m"], "not shorter than the sit"),
        (["10m", "--interval", "often"], "--interval must be a duration"),
        (["10m", "--at", "5m,later"], "--at must be a list of durations"),
        (["10m", "--at", "12m"], "--at 720s is not inside the sit"),
        (["10m", "--at", "2m,2m"], "names a time twice"),
        (["10m", "--interval", "2m", "--at", "5m"], "not both"),
        (["10m", "--bell", "gong"], "--bell must be one of the listed choices (bowl, bell, chime)"),
        (["10m", "--closing-strikes", "0"], "--closing-strikes 0 is out of range"),
        (["10m", "--closing-strikes", "three"], "--closing-strikes must be a whole number"),
        (["10m", "--open", "..."], "--open has nothing a voice can say"),
        (["10m", "--close", "x" * 700], "--close is 700 characters long"),
        (["10m", "--soundscape", "nowhere"], "unknown soundscape 'nowhere'"),
        (["10m", "--bed", "missing.wav"], "missing.wav"),
        (["10m", "--layers", "river"], "--layers needs a --soundscape"),
        (["10m", "--open", "Hello.", "--voice", "nosuch:voice"], "nosuch"),
    ],
)
def test_bad_timer_input_is_one_line_exit_2_and_no_file(tmp_path, capsys, args, says):
    out = tmp_path / "sit.mp3"
    assert main(["timer", *args, "-o", str(out), "--progress", "off"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meditation: error: "), err
    assert says in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_timer_never_replaces_a_file_it_did_not_write_nor_its_bed(tmp_path, capsys):
    mine = tmp_path / "sit.mp3"
    mine.write_bytes(b"the user's own file")
    assert main(["timer", "1m", "-o", str(mine), "--progress", "off"]) == 2
    assert mine.read_bytes() == b"the user's own file"
    assert "sit.mp3" in capsys.readouterr().err
    bed = tmp_path / "bed.wav"
    sf.write(bed, np.random.default_rng(1).normal(0, 0.1, (8000 * 3, 2)), 8000)
    before = bed.read_bytes()
    assert main(["timer", "1m", "--bed", str(bed), "-o", str(bed), "--progress", "off"]) == 2
    assert bed.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bed.wav", "sit.mp3"]


def test_the_plot_and_timings_show_the_bed_dipping_under_every_strike(tmp_path):
    plot, timings = tmp_path / "sit.png", tmp_path / "sit.json"
    args = ["timer", "2m", "--interval", "1m", "--soundscape", "stream", "--sample-rate", "8000"]
    args += ["--plot", str(plot), "--timings", str(timings)]
    assert main([*args, "-o", str(tmp_path / "sit.mp3"), "--progress", "off"]) == 0
    with Image.open(plot) as picture:
        assert picture.size[0] > 400
    plan = json.loads(timings.read_text())
    river = plan["layers"]["river"]
    full = max(river["level_db"])
    for strike in plan["layers"]["bell"]["cues"]:  # closing strikes 5 s apart: each dips on its own
        at = np.interp(strike + 0.5, river["time"], river["level_db"])
        assert full - at == pytest.approx(8.0, abs=0.1), strike
    assert (
        np.interp(plan["layers"]["bell"]["cues"][1] - 5.0, river["time"], river["level_db"]) == full
    )


def test_timer_help_speaks_of_a_sit_not_a_script(capsys):
    with pytest.raises(SystemExit):
        main(["timer", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--soundscape TEXT a preset name or .toml path to sit with under the bells" in shown
    assert "'auto' or 'none': a silent sit" in shown
    assert "title tag (default: Timer and the sit's length" in shown
    assert "a chapter at each bell" in shown
    # render's wording, which speaks of a script's narration and scenes, is not there.
    for words in (
        "narration alone",
        "the script's title",
        "'auto' takes the script's",
        "per scene",
    ):
        assert words not in shown, words
