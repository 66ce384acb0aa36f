"""`meditation ambient` (a soundscape alone) and `meditation soundscapes`."""

import time

import numpy as np
import pytest
import soundfile as sf
from ffmpeg import decode_errors, ebur128
from measure import rms_db, welch_db
from waiting import wait_until

from meditation.cli import main

# A user preset whose default scene (the one an ambient track plays) has both
# a drone and a river, so --layers has something to take away.
BOTH = """name = "both"
description = "drone and river together"
[layers.drone]
level_db = -12.0
root_hz = 110.0
[layers.river]
level_db = -12.0
[scenes.default]
drone = 0.0
river = 0.0
"""


def _ambient(tmp_path, out_name, *args):
    out = tmp_path / out_name
    assert main(["ambient", *args, "-o", str(out), "--progress", "off"]) == 0
    return out


@pytest.mark.parametrize("name", ["night-wind", "dream"])
def test_ambient_track_has_the_asked_length_and_loudness(name, tmp_path):
    out = _ambient(tmp_path, f"{name}.flac", "--soundscape", name, "--duration", "30s")
    assert decode_errors(out) == ""
    info = sf.info(out)
    assert info.samplerate == 44100 and info.channels == 2
    assert info.frames == 30 * 44100
    loudness, peak = ebur128(out)
    assert loudness == pytest.approx(-16.0, abs=1.0)
    assert peak <= -1.0
    audio, sr = sf.read(out, dtype="float64")
    # It sounds all the way through (fades of a few seconds at the ends aside).
    seconds = audio[: 30 * sr].reshape(30, sr, 2)
    levels = 10 * np.log10(np.mean(seconds**2, axis=(1, 2)) + 1e-20)
    assert levels[5:-5].min() > -40.0, levels


def _partials_db(x, sr, root_hz):
    """Spectrum level at the drone's first harmonics, relative to the local floor around each."""
    f, p = welch_db(x, sr, nperseg=65536)
    out = []
    for k in (1, 2, 3, 4):
        at = np.argmin(np.abs(f - k * root_hz))
        near = p[max(0, at - 40) : at + 40]
        out.append(float(near.max() - np.median(near)))
    return out


def test_layers_keeps_only_the_river(tmp_path):
    preset = tmp_path / "both.toml"
    preset.write_text(BOTH, encoding="utf-8")
    full = _ambient(
        tmp_path, "full.flac", "--soundscape", str(preset), "--duration", "30s", "--seed", "2"
    )
    river = _ambient(
        tmp_path,
        "river.flac",
        "--soundscape",
        str(preset),
        "--duration",
        "30s",
        "--seed",
        "2",
        "--layers",
        "river",
        "--stems",
        str(tmp_path / "stems"),
    )
    assert sorted(p.stem for p in (tmp_path / "stems").glob("*.wav")) in (
        ["river"],
        ["river", "voice"],
    )
    a, sr = sf.read(full, dtype="float64")
    b, _ = sf.read(river, dtype="float64")
    # The drone's harmonics (110 Hz and up) stand far out of the spectrum of
    # the full bed and are gone when only the river is kept.
    with_drone, river_only = _partials_db(a, sr, 110.0), _partials_db(b, sr, 110.0)
    assert max(with_drone) > 15.0, with_drone
    assert max(river_only) < 6.0, river_only
    assert ebur128(river)[0] == pytest.approx(-16.0, abs=1.0)


def test_an_unknown_layer_is_refused_with_one_line(tmp_path, capsys):
    out = tmp_path / "x.flac"
    code = main(
        [
            "ambient",
            "--soundscape",
            "stream",
            "--layers",
            "river,rain",
            "--duration",
            "30s",
            "-o",
            str(out),
            "--progress",
            "off",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("meditation: error: ")
    assert "rain" in err and "stream" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_layer_that_would_be_silent_is_refused_not_rendered_as_silence(tmp_path, capsys):
    # The dream's river plays only in its scenes; an ambient track has none.
    out = tmp_path / "x.flac"
    code = main(
        [
            "ambient",
            "--soundscape",
            "dream",
            "--layers",
            "river",
            "--duration",
            "10s",
            "-o",
            str(out),
            "--progress",
            "off",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "river" in err
    assert list(tmp_path.iterdir()) == []


def test_a_duration_of_none_is_refused_with_one_line(tmp_path, capsys):
    # "none" is a valid value of the optional setting elsewhere; an ambient track needs a length.
    out = tmp_path / "x.flac"
    code = main(["ambient", "--duration", "none", "-o", str(out), "--progress", "off"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("meditation: error: ") and "--duration" in err
    assert list(tmp_path.iterdir()) == []


def test_soundscapes_lists_the_presets_with_descriptions(capsys):
    assert main(["soundscapes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {
        line.split()[0]: line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
        for line in lines
        if line.strip()
    }
    for name in ("dream", "stream", "night-wind", "drone", "default"):
        assert name in listed, lines
        assert len(listed[name].split()) >= 3, (
            name,
            listed[name],
        )  # a real description, not a stub


def test_ambient_of_the_same_seed_is_identical_and_another_seed_differs(tmp_path):
    a = _ambient(tmp_path, "a.wav", "--soundscape", "stream", "--duration", "8s", "--seed", "3")
    b = _ambient(tmp_path, "b.wav", "--soundscape", "stream", "--duration", "8s", "--seed", "3")
    c = _ambient(tmp_path, "c.wav", "--soundscape", "stream", "--duration", "8s", "--seed", "4")
    assert a.read_bytes() == b.read_bytes()
    x, _ = sf.read(a, dtype="float64")
    y, _ = sf.read(c, dtype="float64")
    assert (
        rms_db(x - y) > rms_db(x) - 3.0
    )  # independent noise: the difference is as loud as the signal


def test_ambient_with_no_soundscape_and_no_bed_is_refused_in_one_line(tmp_path, capsys):
    # It used to render the default soundscape in silence's place.
    out = tmp_path / "x.flac"
    code = main(["ambient", "--soundscape", "none", "--duration", "5s", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nothing to play" in err and "--bed" in err
    assert list(tmp_path.iterdir()) == []


def test_an_ambient_files_comment_names_only_what_made_it(tmp_path):
    import mutagen

    from meditation import __version__

    out = _ambient(tmp_path, "a.ogg", "--soundscape", "stream", "--duration", "3s", "--seed", "9")
    comment = mutagen.File(out).tags["comment"][0]
    assert comment == f"soundscape stream, seed 9, meditation {__version__}"
    assert "voice" not in comment and "rate" not in comment


def test_stems_of_the_same_seed_are_identical_bytes_written_seconds_apart(tmp_path):
    # libsndfile stamped float WAVs (the stems) with the second they were written, so the same
    # render a second later gave other bytes.
    args = ("--soundscape", "stream", "--duration", "3s", "--seed", "3", "--sample-rate", "16000")
    _ambient(tmp_path, "a.wav", *args, "--stems", str(tmp_path / "a"))
    second = int(time.time())
    wait_until(lambda: int(time.time()) > second, 5)
    _ambient(tmp_path, "b.wav", *args, "--stems", str(tmp_path / "b"))
    stems = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert stems and stems == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in stems:
        a, b = (tmp_path / d / name for d in "ab")
        assert a.read_bytes() == b.read_bytes(), name
        assert rms_db(sf.read(a)[0]) > -60, name  # sound, not two equal silences
