"""Property test of the manifest expander (issue 8): whatever a manifest holds, only the
project's own errors come out, nothing is written, and what expands is safe to render.

Generated manifests mix real keys with junk, every TOML value type (unicode,
NaN, dates, nested tables), matrices, hand-written variants and output
templates with fields, format specs, stray braces and path tricks; a second
strategy feeds raw TOML-ish text. The default profile runs 600 + 200 examples
(about 7 s of CPU); for an occasional deep run, ``HYPOTHESIS_PROFILE=deep pytest
tests/test_batch_manifest_fuzz.py`` runs 30,000 + 10,000.
"""

import datetime
import json
import math
import string
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from meditation.batch import check_outputs, expand_manifest  # noqa: E402
from meditation.batch.manifest import manifest_keys  # noqa: E402
from meditation.errors import MeditationError  # noqa: E402

# The profile's examples (tests/conftest.py), three quarters of them: each one expands a
# manifest. Every health check off: generated TOML is large and often filtered.
EXAMPLES = settings().max_examples * 3 // 4
FUZZ = settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck))

KEYS = sorted(manifest_keys())
SCRIPT = "# Calm\n\nA short line to speak.\n"

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    text,
    st.sampled_from(
        [
            "pyttsx3",
            "piper:joe",
            "PIPER:JOE",
            "none",
            "auto",
            "stream",
            "drone",
            "s.md",
            "missing.md",
            "10m",
            "90s",
            "1h",
            "0",
            "-1",
            "river,wind",
            "../s.md",
            "/etc/passwd",
            "s.md/",
            "nope.toml",
        ]
    ),
    st.dates(),
    st.datetimes(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=2),
    max_leaves=5,
)
keys = st.one_of(
    st.sampled_from(KEYS), st.sampled_from(["name", "output", "pause-scale", "speed"]), text
)
# Plausible values per key (most manifests should get far into expansion), else anything.
PLAUSIBLE = {
    "script": st.sampled_from(["s.md", "s.md", "missing.md", "", "out", "m.toml"]),
    "voice": st.sampled_from(["pyttsx3", "piper:joe", "PYTTSX3", "piper:nobody", "espeak", ""]),
    "rate": st.floats(0.3, 2.5) | st.sampled_from(["0.9", "fast"]),
    "pause_scale": st.floats(-1, 12),
    "duration": st.sampled_from(["10m", "90s", "1h", "7h", "abc", 30, 0, "1h30m", "none"]),
    "lead_in": st.sampled_from([0, 1, "2s", -1, "1m", 4000]),
    "tail": st.sampled_from([0, 1, "2s", -1, "nan"]),
    "soundscape": st.sampled_from(["none", "stream", "drone", "auto", "jungle", "x.toml", "s.md"]),
    "layers": st.sampled_from([["river"], ["tuba"], "river,wind", [], "", ["river", "river"]]),
    "seed": st.integers(-2, 2**64),
    "loudness": st.floats(-50, 0),
    "true_peak": st.floats(-15, 1),
    "sample_rate": st.sampled_from([8000, 44100, 7, 48000.5, "44100", 192001]),
    "title": text,
    "artist": text,
}


def value_of(key):
    plausible = PLAUSIBLE.get(key, values)
    return st.one_of(*[plausible] * 6, values)


def settings_table(required=()):
    """A table of settings, now and then with a key that is not one."""
    some = st.lists(
        st.sampled_from([k for k in KEYS if k not in required]), max_size=3, unique=True
    ).flatmap(lambda chosen: st.fixed_dictionaries({k: value_of(k) for k in (*required, *chosen)}))
    tables = some
    junk = st.dictionaries(keys, values, min_size=1, max_size=1)
    return st.one_of(
        tables, tables, tables, st.tuples(tables, junk).map(lambda pair: {**pair[0], **pair[1]})
    )


matrix = st.dictionaries(
    st.sampled_from(KEYS),
    st.sampled_from(KEYS).flatmap(lambda k: st.lists(value_of(k), max_size=3)),
    max_size=2,
)
field = st.one_of(
    st.sampled_from(KEYS + ["script", "name"]).map(lambda k: "{" + k + "}"),
    st.sampled_from(KEYS + ["script", "name"]).map(lambda k: "{" + k + "}"),
    st.sampled_from(
        [
            "{seed:>5}",
            "{seed!r}",
            "{",
            "}",
            "{{",
            "}}",
            "{0}",
            "{}",
            "{seed.real}",
            "{voice[0]}",
            "/",
            "..",
            "~",
        ]
    ),
    st.text(alphabet=string.ascii_letters + "-_./é ", max_size=5),
)
suffix = st.sampled_from([".mp3", ".wav", ".flac", ".ogg", ".mp3", ".wav", ".aiff", ""])
plain = st.lists(
    st.sampled_from(
        ["{seed}", "{name}", "{voice}", "{rate}", "{script}", "{soundscape}", "-", "/"]
    ),
    min_size=1,
    max_size=4,
)
template = st.one_of(
    st.tuples(plain.map("".join), suffix).map("".join),
    st.tuples(plain.map("".join), suffix).map("".join),
    st.tuples(st.lists(field, min_size=1, max_size=4).map("".join), suffix).map("".join),
)
manifests = st.fixed_dictionaries(
    {
        "defaults": st.one_of(
            settings_table(required=("script",)),
            settings_table(required=("script",)),
            settings_table(),
            values,
        ),
        "output": st.one_of(template, template, template, values),
    },
    optional={
        "matrix": st.one_of(matrix, matrix, matrix, values),
        "variants": st.one_of(st.lists(settings_table(), max_size=3), values),
    },
)


def _toml(value, depth=0):
    """A small TOML writer for generated values (its odd corners are part of the fuzz)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{json.dumps(k, ensure_ascii=False)} = {_toml(v, depth + 1)}"
                for k, v in value.items()
            )
            + "}"
        )
    raise TypeError(type(value))


def _document(manifest):
    lines = []
    for key, value in manifest.items():
        if isinstance(value, dict) and key in ("defaults", "matrix"):
            lines.append(f"[{key}]")
            lines += [f"{json.dumps(k, ensure_ascii=False)} = {_toml(v)}" for k, v in value.items()]
        elif (
            isinstance(value, list)
            and key == "variants"
            and all(isinstance(v, dict) for v in value)
        ):
            for item in value:
                lines.append("[[variants]]")
                lines += [
                    f"{json.dumps(k, ensure_ascii=False)} = {_toml(v)}" for k, v in item.items()
                ]
        else:
            lines.insert(0, f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "s.md").write_text(SCRIPT, encoding="utf-8")
    (folder / "out").mkdir()
    return folder


def _expand(place, document):
    path = place / "m.toml"
    path.write_text(document, encoding="utf-8", errors="surrogatepass")
    before = sorted(p.name for p in place.rglob("*"))
    try:
        variants = expand_manifest(path, out_dir=place / "out", max_variants=50)
        check_outputs(variants, manifest=path)
    except MeditationError as exc:
        assert str(exc).strip() and "\n" not in " ".join(str(exc).split())  # one line's worth
        variants = None
    assert sorted(p.name for p in place.rglob("*")) == before  # expanding writes nothing
    if variants is not None:
        outputs = [v.settings.output for v in variants]
        assert len(set(outputs)) == len(outputs)
        root = (place / "out").resolve()
        assert all(Path(o).resolve().is_relative_to(root) for o in outputs)
        assert all(v.settings.output.suffix in (".mp3", ".wav", ".flac", ".ogg") for v in variants)


@pytest.mark.slow
@FUZZ
@given(manifests)
def test_generated_manifests_raise_only_our_errors(place, manifest):
    _expand(place, _document(manifest))


@pytest.mark.slow
@settings(FUZZ, max_examples=EXAMPLES // 3)
@given(
    st.lists(
        st.sampled_from(
            [
                'output = "{seed}.wav"\n',
                "[defaults]\n",
                "[matrix]\n",
                "[[variants]]\n",
                'script = "s.md"\n',
                "seed = [1, 2]\n",
                'voice = "piper:joe"\n',
                "rate = 0.9\n",
                'name = "a"\n',
                "duration = '1h'\n",
                "[defaults\n",
                "= 1\n",
                '"\n',
                "seed = 1\n",
                "layers = ['river']\n",
                "soundscape = 'stream'\n",
                "x = {a = 1}\n",
                "[matrix.seed]\n",
            ]
        )
        | text,
        max_size=8,
    ).map("".join)
)
def test_raw_text_manifests_raise_only_our_errors(place, document):
    _expand(place, document)
