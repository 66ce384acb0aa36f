"""Pronunciation lexicon: each engine is given the respelling or phonemes it reads; listeners read the words as written."""

import json

import numpy as np
import pytest

from meditation.cache import SpeechCache
from meditation.cli import main
from meditation.errors import SettingsError
from meditation.lexicon import Entry, Lexicon, parse_form, read_lexicon, script_lexicon
from meditation.script import parse_script
from meditation.soundscape import load_preset
from meditation.speech import synthesize
from meditation.voices import ENGINES

LEXICON_TOML = """\
# names and words from the practice
[lexicon]
Vipassana = "vih-PAH-suh-nuh"
metta = { say = "MET-tah", ipa = "mˈɛtə" }
Namaste = "/nˈɑːməsteɪ/"
"Thich Nhat Hanh" = "tick nyat hahn"
"Zoë" = { say = "zoh-ee", ipa = "zˈoʊi" }
"Pema Chödrön" = "PEH-mah CHOH-drun"
sangha = "SAHNG-gah"
dukkha = "/dˈʊkə/"
anicca = "uh-NEE-chah"
Bell = "Belle"
"""

TEXT = (
    "Vipassana and Metta, with Namaste to Thich Nhat Hanh. Zoë reads Pema Chödrön "
    "to the sangha: dukkha, anicca. Bell rings the bell. Mettanomics and METTA."
)

# What each engine is given for TEXT: phonemes where it takes them, else the respelling (lower case).
GIVEN = {
    "piper": (
        "vih-pah-suh-nuh and [[ mˈɛtə ]], with [[ nˈɑːməsteɪ ]] to tick nyat hahn. "
        "[[ zˈoʊi ]] reads peh-mah choh-drun to the sahng-gah: [[ dˈʊkə ]], uh-nee-chah. "
        "belle rings the bell. Mettanomics and [[ mˈɛtə ]]."
    ),
    "hibari": (
        "vih-pah-suh-nuh and [Metta](/mˈɛtə/), with [Namaste](/nˈɑːməstA/) to tick nyat hahn. "
        "[Zoë](/zˈOi/) reads peh-mah choh-drun to the sahng-gah: [dukkha](/dˈʊkə/), "
        "uh-nee-chah. belle rings the bell. Mettanomics and [METTA](/mˈɛtə/)."
    ),
    "pyttsx3": (
        "vih-pah-suh-nuh and met-tah, with Namaste to tick nyat hahn. "
        "zoh-ee reads peh-mah choh-drun to the sahng-gah: dukkha, uh-nee-chah. "
        "belle rings the bell. Mettanomics and met-tah."
    ),
}


def _listen(monkeypatch, engine: str) -> list[str]:
    """The texts ``engine`` is given from now on: the real engine speaks, we only note them."""
    engine_cls = ENGINES[engine]
    heard: list[str] = []
    real = engine_cls.synthesize

    def spy(self, text, *, rate, seed):
        heard.append(text)
        return real(self, text, rate=rate, seed=seed)

    monkeypatch.setattr(engine_cls, "synthesize", spy)
    return heard


@pytest.fixture
def lexicon_file(tmp_path):
    path = tmp_path / "names.toml"
    path.write_text(LEXICON_TOML, encoding="utf-8")
    return path


@pytest.mark.parametrize("engine", sorted(GIVEN))
def test_each_engine_is_given_its_own_form_of_every_word(lexicon_file, engine):
    lexicon = Lexicon(read_lexicon(lexicon_file))
    assert len(lexicon.entries) == 10
    assert lexicon.apply(TEXT, ENGINES[engine].phonemes) == GIVEN[engine]


@pytest.mark.parametrize("voice", ["piper:joe", "hibari:heart"])
def test_the_engine_receives_the_lexicon_text_and_captions_keep_the_words(
    tmp_path, lexicon_file, monkeypatch, voice
):
    heard = _listen(monkeypatch, voice.partition(":")[0])
    script = tmp_path / "names.md"
    script.write_text(
        "---\nlead_in: 0.3\ntail: 0.5\nsoundscape: none\nlexicon:\n  Sangha: SAHNG-gah\n---\n\n"
        "# Metta\n\nWe sit with {Vipassana|vih-PAH-suh-nuh} and metta.\n\nThe Sangha rests.\n",
        encoding="utf-8",
    )
    out = tmp_path / "names.wav"
    args = ["render", str(script), "--voice", voice, "--lexicon", str(lexicon_file)]
    args += ["--rate", "0.9"]  # a rate, not the default pace: no probe spoken first
    args += ["-o", str(out), "--captions", str(tmp_path / "names.vtt"), "--no-cache"]
    args += ["--timings", str(tmp_path / "names.json"), "--progress", "off"]
    assert main(args) == 0
    phon = ENGINES[voice.partition(":")[0]].phonemes("metta", "mˈɛtə")
    assert heard == [f"We sit with vih-pah-suh-nuh and {phon}.", "The sahng-gah rests."]
    captions = (tmp_path / "names.vtt").read_text(encoding="utf-8")
    assert "We sit with Vipassana and metta." in captions and "The Sangha rests." in captions
    timings = json.loads((tmp_path / "names.json").read_text(encoding="utf-8"))
    assert "Vipassana" in json.dumps(timings, ensure_ascii=False)
    assert "vih-pah" not in json.dumps(timings) and "Metta" in [
        s.get("name") for s in timings.get("scenes", [])
    ]


def test_same_text_and_lexicon_same_bits_and_the_cache_keys_what_the_engine_was_given(tmp_path):
    texts = ["Rest in metta.", "Rest in metta."]
    with_ipa = Lexicon([parse_form("metta", "/mˈɛtə/", "t:1")])
    respelt = Lexicon([parse_form("metta", "MET-tah", "t:2")])
    cache = SpeechCache(tmp_path)
    a = synthesize(texts, voice="hibari:heart", rate=1.0, sample_rate=24000, lexicon=with_ipa)
    b = synthesize(texts, voice="hibari:heart", rate=1.0, sample_rate=24000, lexicon=with_ipa)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[0], a[1])
    plain = synthesize(texts[:1], voice="hibari:heart", rate=1.0, sample_rate=24000, cache=cache)
    synthesize(
        texts[:1], voice="hibari:heart", rate=1.0, sample_rate=24000, cache=cache, lexicon=with_ipa
    )
    synthesize(
        texts[:1], voice="hibari:heart", rate=1.0, sample_rate=24000, cache=cache, lexicon=respelt
    )
    assert cache.count() == 3 and cache.hits == 0  # a lexicon change is a new entry
    again = synthesize(texts[:1], voice="hibari:heart", rate=1.0, sample_rate=24000, cache=cache)
    assert cache.hits == 1 and np.array_equal(again[0], plain[0])
    assert not np.array_equal(plain[0], a[0])  # the entry does change the audio


def test_case_and_whole_words():
    lexicon = Lexicon(
        [Entry("Bell", say="Belle", where="x:1"), Entry("om", say="ohm", where="x:2")]
    )
    say = lexicon.apply("Bell, bell, BELL; om Om OM, home, Bellows.", lambda w, p: None)
    assert say == "belle, bell, BELL; ohm ohm ohm, home, Bellows."
    # A phrase matches across any spacing, the longest entry first.
    phrase = Lexicon(
        [
            Entry("Nhat", say="nyat", where="x:1"),
            Entry("Thich Nhat Hanh", say="tick nyat hahn", where="x:2"),
        ]
    )
    assert (
        phrase.apply("Thich  Nhat\nHanh and Nhat.", lambda w, p: None) == "tick nyat hahn and nyat."
    )


def test_front_matter_and_headings_are_never_rewritten():
    script = parse_script(
        "---\ntitle: Metta at dawn\nlexicon:\n  Metta: MET-tah\n---\n\n# Metta\n\nMetta is kind.\n"
    )
    assert script.title == "Metta at dawn" and script.scenes[0].name == "Metta"
    assert [e.word for e in script.pronunciations] == ["Metta"]
    assert script.scenes[0].items[0].text == "Metta is kind."


@pytest.mark.parametrize(
    "entry, message",
    [
        ('Metta = ""', "names.toml:3: lexicon entry 'Metta' says nothing (empty)"),
        ('Metta = "/mˈɛt7ə/"', "names.toml:3: lexicon entry 'Metta': unknown phonemes '7'"),
        ('Metta = "Metta-ah"', "names.toml:3: lexicon entry 'Metta' loops into itself"),
        (
            'metta = "sangha"\nsangha = "metta"',
            "names.toml:3: lexicon entry 'metta' loops into itself",
        ),
        ('Metta = { says = "x" }', "names.toml:3: lexicon entry 'Metta': give say ="),
        ('Metta = "MET3"', "names.toml:3: lexicon entry 'Metta': respell with letters"),
    ],
)
def test_bad_entries_exit_2_in_one_line_naming_file_and_line(tmp_path, capsys, entry, message):
    lexicon = tmp_path / "names.toml"
    lexicon.write_text(f"# ours\n[lexicon]\n{entry}\n", encoding="utf-8")
    script = tmp_path / "calm.md"
    script.write_text("Rest in metta.\n", encoding="utf-8")
    out = tmp_path / "calm.wav"
    assert main(["render", str(script), "--lexicon", str(lexicon), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    "text, where, message",
    [
        ("Say {Metta|}.\n", ":1:5:", "says nothing"),
        ("Say {Metta|/mˈɛtə}.\n", ":1:5:", "between slashes"),
        ("---\nlexicon:\n  Metta /x/\n---\nHi.\n", ":3:1:", "expected 'word: respelling'"),
        ("---\nlexicon:\n  Metta: /qq1/\n---\nHi.\n", ":3:1:", "unknown phonemes '1'"),
    ],
)
def test_bad_entries_in_the_script_name_line_and_column(tmp_path, capsys, text, where, message):
    script = tmp_path / "calm.md"
    script.write_text(text, encoding="utf-8")
    assert main(["render", str(script), "-o", str(tmp_path / "calm.wav")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"calm.md{where}" in err and message in err, err


def test_the_scripts_entries_win_over_the_files(lexicon_file):
    script = parse_script("---\nlexicon:\n  Vipassana: vee-PAH-sah-nah\n---\nVipassana.\n")
    lexicon = script_lexicon(script, lexicon_file)
    assert lexicon.apply("Vipassana.", lambda w, p: None) == "vee-pah-sah-nah."


def test_a_lexicon_that_is_not_a_table_or_missing_is_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("lexicon = 3\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="must be a table"):
        read_lexicon(bad)
    with pytest.raises(SettingsError, match="no such lexicon file"):
        read_lexicon(tmp_path / "missing.toml")


def test_batch_skips_an_unchanged_render_and_re_renders_after_a_lexicon_change(tmp_path, capsys):
    (tmp_path / "calm.md").write_text(
        "---\nlead_in: 0.3\ntail: 0.5\nsoundscape: none\n---\n\nRest in metta.\n", encoding="utf-8"
    )
    lexicon = tmp_path / "names.toml"
    lexicon.write_text('[lexicon]\nmetta = "MET-tah"\n', encoding="utf-8")
    manifest = tmp_path / "set.toml"
    manifest.write_text(
        'output = "{name}.wav"\n[defaults]\nscript = "calm.md"\nvoice = "hibari:heart"\n'
        'lexicon = "names.toml"\n[[variants]]\nname = "one"\n',
        encoding="utf-8",
    )
    assert main(["batch", str(manifest)]) == 0
    first = (tmp_path / "one.wav").read_bytes()
    capsys.readouterr()
    assert main(["batch", str(manifest)]) == 0
    assert "skipped one (up to date)" in capsys.readouterr().out
    lexicon.write_text('[lexicon]\nmetta = "/mˈɛtə/"\n', encoding="utf-8")
    assert main(["batch", str(manifest)]) == 0
    assert "rendered one" in capsys.readouterr().out
    assert (tmp_path / "one.wav").read_bytes() != first


PRESET = """name = "hall of names"
fade_s = 4.0

[layers.drone]
level_db = -20.0

[scenes.default]
drone = 0.0

[lexicon]
Sangha = "SAHNG-gah"
metta = "MAY-tuh"
Namaste = "/nˈɑːməsteɪ/"
"""


def test_a_soundscape_presets_lexicon_is_the_first_source_the_others_win_over(
    tmp_path, lexicon_file
):
    preset = tmp_path / "hall.toml"
    preset.write_text(PRESET, encoding="utf-8")
    entries = load_preset(str(preset)).lexicon
    assert [(e.word, e.where) for e in entries] == [
        ("Sangha", f"{preset}:11"),
        ("metta", f"{preset}:12"),
        ("Namaste", f"{preset}:13"),
    ]
    say = lambda w, p: None  # noqa: E731 - the respelling, as eSpeak is given it
    alone = script_lexicon(parse_script("Hi.\n"), preset=entries)
    assert alone.apply("The Sangha, metta.", say) == "The sahng-gah, may-tuh."
    # preset < --lexicon file < front matter < inline, each on the same word.
    script = parse_script("---\nlexicon:\n  Sangha: SUNG-ah\n---\n{metta|MET-ah}. Sangha. Metta.\n")
    merged = script_lexicon(script, lexicon_file, preset=entries)
    assert merged.apply("metta Sangha", say) == "met-ah sung-ah"
    assert merged.apply("Namaste", say) == script_lexicon(
        parse_script("Hi.\n"), lexicon_file
    ).apply("Namaste", say)  # the file's Namaste, not the preset's


def test_a_render_over_the_preset_says_its_words(tmp_path, monkeypatch):
    preset = tmp_path / "hall.toml"
    preset.write_text(PRESET, encoding="utf-8")
    heard = _listen(monkeypatch, "hibari")
    script = tmp_path / "sangha.md"
    script.write_text(
        f"---\nlead_in: 0.3\ntail: 0.5\nsoundscape: {preset}\n---\n\nThe Sangha rests.\n",
        encoding="utf-8",
    )
    out = tmp_path / "sangha.wav"
    args = ["render", str(script), "--voice", "hibari:heart", "--rate", "1", "--no-cache"]
    assert main([*args, "-o", str(out), "--captions", str(tmp_path / "s.vtt")]) == 0
    assert heard == ["The sahng-gah rests."]
    assert "The Sangha rests." in (tmp_path / "s.vtt").read_text(encoding="utf-8")


def test_a_bad_entry_in_a_preset_exits_2_naming_its_line(tmp_path, capsys):
    preset = tmp_path / "hall.toml"
    preset.write_text(PRESET.replace('"SAHNG-gah"', '"SAHNG3"'), encoding="utf-8")
    script = tmp_path / "calm.md"
    script.write_text("Rest in metta.\n", encoding="utf-8")
    out = tmp_path / "calm.wav"
    assert main(["render", str(script), "--soundscape", str(preset), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{preset}:11: lexicon entry 'Sangha'" in err, err
    assert not out.exists()
