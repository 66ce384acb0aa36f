"""`meditation say`: one line, heard at once, written like any render."""

import numpy as np
import pytest
import soundfile as sf

from meditation.cli import main
from meditation.loudness import integrated_loudness


@pytest.mark.parametrize("voice", ["hibari:heart", "piper:joe"])
def test_say_speaks_the_line_with_the_voice_at_the_target_loudness(tmp_path, monkeypatch, voice):
    monkeypatch.chdir(tmp_path)
    assert main(["say", "Let your shoulders soften.", "--voice", voice, "--progress", "off"]) == 0
    audio, rate = sf.read(tmp_path / "say.wav")
    assert rate == 44100 and 1.0 < len(audio) / rate < 4.0
    assert abs(integrated_loudness(audio, rate) - -16.0) < 0.5
    # Again: the file it wrote is its own to replace, with the same bits for the same line.
    first = (tmp_path / "say.wav").read_bytes()
    assert main(["say", "Let your shoulders soften.", "--voice", voice]) == 0
    assert (tmp_path / "say.wav").read_bytes() == first


def test_say_never_replaces_a_users_file_and_refuses_nothing_to_say(tmp_path, capsys):
    mine = tmp_path / "mine.wav"
    mine.write_bytes(b"my recording")
    assert main(["say", "Hello.", "-o", str(mine)]) == 2
    assert mine.read_bytes() == b"my recording"
    assert "not written by meditation" in capsys.readouterr().err
    assert main(["say", " ... ", "-o", str(tmp_path / "x.wav")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "meditation: error: say: nothing to say (give the words in quotes)"
    )
    assert main(["say", "Hi.", "--voice", "hibari:emma", "-o", str(tmp_path / "x.wav")]) == 2
    assert "not installed" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_say_writes_mp3_through_the_export_writer(tmp_path):
    out = tmp_path / "hello.mp3"
    assert main(["say", "Hello there.", "--voice", "hibari", "-o", str(out), "--rate", "0.8"]) == 0
    audio, rate = sf.read(out)
    assert np.sqrt(np.mean(audio**2)) > 0.01
