"""The README's examples do what the text beside them says (issue 18, item 17)."""

import re
import shlex
from pathlib import Path

from meditation.schema import parse_duration_s
from meditation.soundscape import load_preset

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(pattern: str) -> list[list[str]]:
    """The README's `meditation …` command lines that match ``pattern``, as argument lists."""
    found = []
    for line in README.splitlines():
        if line.startswith("meditation ") and re.search(pattern, line):
            found.append(shlex.split(line.split("  #")[0]))
    assert found, pattern
    return found


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_the_sleep_story_example_lasts_long_enough_to_reach_delta():
    # The sleep preset glides to delta after the last word; the dream's own tail (16 s)
    # ends the track long before the glide does, so the example must ask for more.
    preset = load_preset("sleep")
    glide_s = max(c.params.get("glide_s", 0.0) for c in preset.cues if c.layer == "beats")
    for args in _commands(r"render .*--soundscape sleep"):
        tail = _option(args, "--tail")
        assert tail is not None and parse_duration_s(tail) >= glide_s, args


def test_eight_hour_examples_write_opus_not_gigabytes_of_lossless_audio():
    for args in _commands(r"--duration 8h"):
        assert Path(_option(args, "-o")).suffix == ".opus", args
