"""`--bed FILE --bed-level DB` is honoured: the recorded bed plays DB relative to the narration.

It once rendered at -12 dB whatever was asked: checking the bed re-read
``FILE[:LEVEL]`` with a default of its own and overwrote the level. The level
has one default and one range now, declared in the settings schema.
"""

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from meditation.cli import main
from meditation.errors import SettingsError
from meditation.settings import SCHEMA, resolve_settings

SR = 16000


@pytest.fixture(scope="module")
def bed_path(tmp_path_factory):
    """Steady band-passed noise, 20 s: the same level wherever it is measured."""
    rng = np.random.default_rng(3)
    sos = signal.butter(4, [80, 2000], btype="bandpass", fs=SR, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal((20 * SR, 2)), axis=0)
    path = tmp_path_factory.mktemp("bed") / "noise.flac"
    sf.write(path, (0.2 * x / x.std()).astype(np.float32), SR)
    return path


def _stem_db(path):
    x, _ = sf.read(path, dtype="float64", always_2d=True)
    x = x[3 * SR : -8 * SR]  # clear of the track's fades
    return 10 * np.log10(np.mean(x * x))


def _render(tmp_path, bed, *level_args):
    tmp_path.mkdir()
    script = tmp_path / "s.md"
    script.write_text("# Rest\n\nListen to the rain. Let it carry you.\n", encoding="utf-8")
    stems = tmp_path / "stems"
    args = ["render", str(script), "-o", str(tmp_path / "o.wav"), "--voice", "pyttsx3"]
    args += ["--soundscape", "none", "--bed", *bed, "--stems", str(stems)]
    args += ["--sample-rate", str(SR), "--progress", "off"]
    assert main(args + list(level_args)) == 0
    # The bed relative to the voice: the master's gain, which moves both, drops out.
    return _stem_db(stems / "bed.wav") - _stem_db(stems / "voice.wav")


@pytest.mark.parametrize("form", ["option", "suffix"])
def test_bed_level_minus_6_plays_6_db_above_minus_12(tmp_path, bed_path, form):
    low = _render(tmp_path / "low", [str(bed_path)], "--bed-level", "-12")
    if form == "option":
        high = _render(tmp_path / "high", [str(bed_path)], "--bed-level", "-6")
    else:
        high = _render(tmp_path / "high", [f"{bed_path}:-6"])
    assert high - low == pytest.approx(6.0, abs=0.3), (low, high)


def test_the_level_has_one_default_and_one_range(bed_path):
    bed = str(bed_path)
    default = SCHEMA["bed_level"].default
    assert resolve_settings({"bed": bed}).bed_level_db == default
    assert resolve_settings({"bed": bed, "bed_level": "-6"}).bed_level_db == -6.0
    at = resolve_settings({"bed": f"{bed}:-3", "bed_level": "-6"})
    assert (str(at.bed), at.bed_level_db) == (bed, -3.0)  # FILE:LEVEL says it most precisely
    for text in (f"{bed}:-61", f"{bed}:13"):
        with pytest.raises(SettingsError, match="out of range"):
            resolve_settings({"bed": text})
    with pytest.raises(SettingsError, match="out of range"):
        resolve_settings({"bed": bed, "bed_level": "-61"})
