"""A schedule in a batch manifest (issue 22 §3): a variant with a schedule renders an ambient night."""

import json
import textwrap

import pytest
import soundfile as sf

from meditation.cli import main

SCHEDULE = "night-wind@0,stream@40s,drone@80s"


def _manifest(folder, body):
    path = folder / "nights.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_scheduled_variant_is_the_night_ambient_renders(tmp_path):
    (tmp_path / "night.toml").write_text(
        textwrap.dedent(
            """\
            crossfade = "10s"
            places = [
              { soundscape = "night-wind", at = "0" },
              { soundscape = "drone", at = "1m" },
            ]
            """
        ),
        encoding="utf-8",
    )
    manifest = _manifest(
        tmp_path,
        f"""\
        output = "{{name}}.wav"

        [defaults]
        duration = "2m"
        sample_rate = 8000
        seed = 3

        [[variants]]
        name = "inline"
        schedule = "{SCHEDULE}"
        crossfade = "20s"
        wake = "30s"

        [[variants]]
        name = "from-file"
        schedule = "night.toml"
        """,
    )
    assert main(["batch", str(manifest), "--progress", "off"]) == 0
    # The same night as `meditation ambient` makes of the same settings, sample for sample.
    alone = tmp_path / "alone.wav"
    args = ["ambient", "--duration", "2m", "--sample-rate", "8000", "--seed", "3"]
    args += ["--schedule", SCHEDULE, "--crossfade", "20s", "--wake", "30s"]
    assert main([*args, "-o", str(alone), "--progress", "off"]) == 0
    batch, sr = sf.read(tmp_path / "inline.wav", dtype="int32")
    assert sr == 8000 and len(batch) == 2 * 60 * 8000
    assert batch.tobytes() == sf.read(alone, dtype="int32")[0].tobytes()
    # The sidecar records the places as the timeline's scenes, and the schedule among the settings.
    sidecar = json.loads((tmp_path / "inline.json").read_text(encoding="utf-8"))
    assert sidecar["settings"]["schedule"] == SCHEDULE
    scenes = [s["name"] for s in sidecar["timeline"]["scenes"]]
    assert scenes[:3] == ["night-wind", "stream", "drone"], scenes
    assert sidecar["timeline"]["segments"] == []  # nothing spoken
    filed = json.loads((tmp_path / "from-file.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in filed["timeline"]["scenes"]][:2] == ["night-wind", "drone"]
    # Up to date: a second run renders nothing; a changed schedule file renders that variant again.
    stamp = (tmp_path / "inline.wav").stat().st_mtime_ns
    assert main(["batch", str(manifest), "--progress", "off"]) == 0
    assert (tmp_path / "inline.wav").stat().st_mtime_ns == stamp
    (tmp_path / "night.toml").write_text(
        (tmp_path / "night.toml").read_text(encoding="utf-8").replace('"1m"', '"50s"'),
        encoding="utf-8",
    )
    before = (tmp_path / "from-file.json").read_text(encoding="utf-8")
    assert main(["batch", str(manifest), "--progress", "off"]) == 0
    assert (tmp_path / "from-file.json").read_text(encoding="utf-8") != before


def _refused(tmp_path, capsys, body):
    manifest = _manifest(tmp_path, body)
    assert main(["batch", str(manifest), "--progress", "off"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert not list(tmp_path.glob("*.wav"))
    return err


def test_a_scheduled_variant_needs_a_duration(tmp_path, capsys):
    err = _refused(tmp_path, capsys, f'output = "n.wav"\n[defaults]\nschedule = "{SCHEDULE}"\n')
    assert "[defaults]: schedule: " in err and "give its duration" in err


def test_a_scheduled_variant_reads_no_script(tmp_path, capsys):
    (tmp_path / "s.md").write_text("Rest.\n", encoding="utf-8")
    body = (
        f'output = "n.wav"\n[defaults]\nscript = "s.md"\nduration = "1m"\nschedule = "{SCHEDULE}"\n'
    )
    assert "reads no script" in _refused(tmp_path, capsys, body)


def test_a_bad_schedule_or_its_shape_is_named_with_its_variant(tmp_path, capsys):
    body = 'output = "n.wav"\n[defaults]\nduration = "1m"\nschedule = "nowhere@0"\n'
    err = _refused(tmp_path, capsys, body)
    assert "[defaults]" in err and "schedule" in err and "nowhere" in err
    # A night that does not fit its length is refused before any variant renders.
    body = 'output = "{seed}.wav"\n[defaults]\nduration = "40s"\nschedule = "night-wind@0,stream@20s"\n'
    body += "[matrix]\nseed = [1, 2]\n"
    err = _refused(tmp_path, capsys, body)
    assert "matrix #1 (seed=1): schedule: " in err and "less than the crossfade" in err
    body = 'output = "{name}.wav"\n[[variants]]\nname = "v"\nwake = "1m"\n'
    err = _refused(tmp_path, capsys, body)
    assert "variant 'v'" in err and "schedule" in err
