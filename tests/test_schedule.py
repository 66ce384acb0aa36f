"""A night in movements: `ambient --schedule` (issue 22, part 3)."""

import json
import textwrap

import numpy as np
import pytest
import soundfile as sf
from ffmpeg import ffmpeg_chapters, probe
from peak import peak_kib

from meditation.cli import main


def _minute_levels_db(path) -> np.ndarray:
    """Mean power of each whole minute of a stem, in dB (-inf where it is digital silence)."""
    x, sr = sf.read(path, dtype="float64")
    minutes = len(x) // (60 * sr)
    power = (x[: minutes * 60 * sr] ** 2).mean(axis=1).reshape(minutes, 60 * sr).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(power)


def _silent_outside(path, begin_s, end_s) -> bool:
    x, sr = sf.read(path, dtype="float64")
    inside = np.zeros(len(x), dtype=bool)
    inside[int(begin_s * sr) : int(end_s * sr)] = True
    return not np.any(x[~inside])


def test_each_place_sounds_only_in_its_hours_and_the_wake_up_rises(tmp_path):
    out, stems, timings = tmp_path / "night.mp3", tmp_path / "stems", tmp_path / "night.json"
    plot = tmp_path / "night.png"
    args = ["ambient", "--duration", "20m", "--schedule", "night-wind@0,stream@6m,drone@13m"]
    args += ["--crossfade", "1m", "--wake", "3m", "--sample-rate", "8000", "--plot", str(plot)]
    assert main([*args, "-o", str(out), "--stems", str(stems), "--progress", "off"]) == 0
    # Crossfades are centred on the changes: 30 s either side.
    assert _silent_outside(stems / "night-wind.wind.wav", 0, 6 * 60 + 30)
    assert _silent_outside(stems / "stream.river.wav", 6 * 60 - 30, 13 * 60 + 30)
    assert _silent_outside(stems / "drone.drone.wav", 13 * 60 - 30, 20 * 60)
    assert _silent_outside(stems / "wake-bell.wav", 17 * 60, 20 * 60)
    wind = _minute_levels_db(stems / "night-wind.wind.wav")
    river = _minute_levels_db(stems / "stream.river.wav")
    drone = _minute_levels_db(stems / "drone.drone.wav")
    assert min(wind[0:5]) > -40 and min(river[7:12]) > -40 and min(drone[14:17]) > -40
    # The wake-up ramp: the last place rises by about 6 dB over the last 3 minutes.
    assert 3.0 < drone[19] - np.mean(drone[14:17]) < 8.0, drone
    assert plot.stat().st_size > 0
    # The plan, as the plot and the timings show it, and a chapter per place.
    plan = json.loads(timings.read_text()) if timings.exists() else None
    assert plan is None  # --timings was not asked for
    chapters = ffmpeg_chapters(out)
    assert [t for _, t in chapters] == ["night-wind", "stream", "drone", "wake-up"]
    assert [s for s, _ in chapters] == pytest.approx([0, 360, 780, 1020], abs=0.01)


def test_a_schedule_file_is_the_same_night_as_the_command_line(tmp_path):
    (tmp_path / "night.toml").write_text(
        textwrap.dedent(
            """
            crossfade = "30s"
            places = [
              { soundscape = "night-wind", at = "0" },
              { soundscape = "stream", at = "1m" },
            ]
            """
        )
    )
    common = ["ambient", "--duration", "2m", "--sample-rate", "8000", "--progress", "off"]
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    inline = "night-wind@0,stream@1m"
    assert main([*common, "--schedule", inline, "--crossfade", "30s", "-o", str(a)]) == 0
    assert main([*common, "--schedule", str(tmp_path / "night.toml"), "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    "args, says",
    [
        (["--schedule", "stream"], "'stream' is not PLACE@TIME"),
        (["--schedule", "nowhere@0"], "unknown soundscape 'nowhere'"),
        (["--schedule", "stream@0,drone@soon"], "drone@soon: not a duration"),
        (["--schedule", "stream@5m,drone@7m"], "the first place starts at 0"),
        (["--schedule", "stream@0,drone@6m,night-wind@3m"], "does not come after"),
        (["--schedule", "stream@0,drone@2m"], "less than the crossfade (5 min)"),
        (["--schedule", "stream@0,drone@9m59s"], "starts too late"),
        (["--schedule", "stream@0,drone@12m"], "drone@12 min starts after the 10 min track ends"),
        (["--schedule", "stream@0", "--soundscape", "drone"], "not both"),
        (["--schedule", "stream@0", "--layers", "river"], "--layers does not apply"),
        (["--wake", "1m"], "shape a --schedule"),
        (["--crossfade", "0", "--schedule", "stream@0"], "--crossfade 0 is out of range"),
        (["--schedule", "stream@0,drone@6m", "--wake", "5m"], "--wake 5 min begins before"),
        (["--schedule", "missing.toml"], "missing.toml: no such schedule file"),
    ],
)
def test_bad_schedules_are_one_line_exit_2_and_no_file(tmp_path, capsys, args, says):
    out = tmp_path / "night.mp3"
    code = main(["ambient", "--duration", "10m", *args, "-o", str(out), "--progress", "off"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and says in err, err
    assert not out.exists()


def test_a_schedule_file_with_an_unknown_key_is_refused(tmp_path, capsys):
    night = tmp_path / "night.toml"
    night.write_text('wakeup = "5m"\nplaces = [{ soundscape = "stream", at = "0" }]\n')
    args = ["ambient", "--duration", "10m", "--schedule", str(night)]
    assert main([*args, "-o", str(tmp_path / "n.mp3"), "--progress", "off"]) == 2
    assert "unknown key 'wakeup'" in capsys.readouterr().err


def _night(tmp_path, duration, schedule, crossfade, wake):
    out = tmp_path / f"night-{duration}.mp3"
    args = ["ambient", "--duration", duration, "--schedule", schedule, "--crossfade", crossfade]
    return [*args, "--wake", wake, "--sample-rate", "8000", "-o", out, "--progress", "off"], out


@pytest.mark.slow
def test_an_eight_hour_night_renders_in_the_memory_of_ten_minutes(tmp_path):
    short, _ = _night(tmp_path, "10m", "night-wind@0,stream@2m30s,drone@8m", "1m", "1m")
    night, out = _night(tmp_path, "8h", "night-wind@0,stream@2h,drone@6h30m", "5m", "20m")
    short_kib, night_kib = peak_kib(short, night)
    assert night_kib <= 1.3 * short_kib, (night_kib, short_kib)
    assert probe(out)["duration"] == pytest.approx(8 * 3600, abs=0.1)
    assert [t for _, t in ffmpeg_chapters(out)] == ["night-wind", "stream", "drone", "wake-up"]
