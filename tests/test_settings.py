"""The settings schema: one declaration per setting, and everything derived from it agrees."""

import re
from pathlib import Path

import pytest

from meditation.cli import _parser
from meditation.errors import ScriptError, SettingsError
from meditation.script import parse_script
from meditation.settings import SCHEMA, Use, coerce, resolve_settings, specs_for
from meditation.settings_table import readme_table

README = Path(__file__).resolve().parent.parent / "README.md"


def _options_in_help(command: str) -> set[str]:
    sub = next(a for a in _parser()._actions if a.dest == "command").choices[command]
    return {o for action in sub._actions for o in action.option_strings if o.startswith("--")} - {
        "--help",
        "--progress",
        "--explain",  # render's dry run (what the soundscape plays and why), not a setting
    }


def test_the_readme_table_is_the_schema():
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- settings table")
    table = text[text.index("\n", start) + 1 : text.index("<!-- end of settings table -->")].strip()
    assert table == readme_table(), (
        "README table is stale: run python -m meditation.settings_table --readme"
    )


@pytest.mark.parametrize("command, use", [("render", Use.RENDER), ("ambient", Use.AMBIENT)])
def test_each_command_offers_exactly_the_settings_it_honours(command, use):
    expected = {spec.option for spec in specs_for(use) if spec.key != "script"}
    assert _options_in_help(command) == expected


def test_ambient_refuses_speech_options():
    from meditation.cli import main

    for option in (
        ["--voice", "pyttsx3"],
        ["--rate", "0.8"],
        ["--timings", "t.json"],
        ["--pause-scale", "2"],
    ):
        assert main(["ambient", "--duration", "5s", "--progress", "off", *option]) == 2


@pytest.mark.parametrize(
    "key, raw, message",
    [
        ("rate", "abc", "rate must be a number, not 'abc'"),
        ("pause_scale", "abc", "pause_scale must be a number, not 'abc'"),
        ("rate", 7, "rate 7 is out of range (0.5 to 2 ×)"),
        ("duration", "7h", None),
        ("duration", "25h", "duration 25h is out of range (1 s to 24 h)"),
        ("tail", "30m", None),
        ("seed", 1.5, "seed must be a whole number, not 1.5"),
        ("seed", "-3", "seed -3 is out of range (at least 0)"),
        ("loudness", "loud", "loudness must be a number, not 'loud'"),
        ("layers", "", "layers must be a list of names"),
        ("cache", "perhaps", "cache must be true or false, not 'perhaps'"),
        ("lead_in", "nan", "lead_in must be a duration"),
    ],
)
def test_every_value_error_has_one_wording_naming_the_setting_as_written(key, raw, message):
    if message is None:
        coerce(key, raw)
        return
    with pytest.raises(SettingsError) as info:
        coerce(key, raw)
    assert str(info.value).startswith(message)


def test_the_command_line_names_options_and_front_matter_names_lines():
    with pytest.raises(SettingsError, match=r"^--rate 7 is out of range"):
        resolve_settings({"rate": "7"}, labels={"rate": "--rate"})
    script = parse_script("---\nrate: 0.8\npause_scale: lots\n---\nHello.\n", path="s.md")
    with pytest.raises(ScriptError, match=r"^s\.md:3:1: pause_scale must be a number, not 'lots'"):
        resolve_settings({}, script)


def test_units_and_durations_echo_what_was_typed_and_read_right():
    settings = resolve_settings({"duration": "1h30m", "tail": "30m", "lead_in": 2})
    assert (settings.duration_s, settings.tail_s, settings.lead_in_s) == (5400.0, 1800.0, 2.0)


def test_front_matter_keys_are_the_schemas():
    keys = {spec.key for spec in specs_for(Use.FRONT_MATTER)}
    for key in keys:
        assert key in SCHEMA
    with pytest.raises(ScriptError, match="unknown front matter key 'colour'"):
        parse_script("---\ncolour: blue\n---\nHello.\n")


def test_voice_names_are_case_insensitive():
    from meditation.voices import list_voices, resolve_voice

    espeak = next(
        v
        for v in list_voices()
        if v.startswith("pyttsx3:") and re.search(r"[a-z]", v.split(":", 1)[1])
    )
    assert resolve_voice(espeak.upper().replace("PYTTSX3", "pyttsx3")) == espeak
    assert resolve_voice("PIPER:JOE") == "piper:joe"
