"""Batch-produce variants of meditations from a TOML manifest.

Manifest::

    output = "{script}-{voice}-{rate}-{soundscape}-{seed}.mp3"

    [defaults]                     # shared settings: render long options, _ for -
    script = "dream.md"            # relative paths are relative to the manifest
    seed = 1

    [matrix]                       # every combination of these values
    voice = ["piper:joe", "pyttsx3"]
    rate = [0.8, 0.9]

    [[variants]]                   # hand-written variants, each over the defaults
    name = "short"                 # optional; usable in the template as {name}
    duration = "10m"

A variant with a ``schedule`` (issue 22 §3) is an ambient night: it reads no
script, needs a ``duration`` and renders what ``meditation ambient --schedule``
makes of the same settings.

The variants are every matrix combination, then every hand-written variant.
The output template's fields are ``{script}`` (the script's stem), ``{name}``
and any setting key; a field takes the value as written in the manifest, else
the resolved setting (the script's front matter, else the default). The
suffix picks the format; a ``/`` in the template makes sub-folders of the
output folder.

Everything the manifest can get wrong — an unknown key, a bad value, an
unknown voice, preset or layer, a script that does not parse, two variants
writing one file — is refused before anything renders, naming the variant
and the key. What can only be found while rendering (a ``duration`` too short
for the speech, a crashing engine) fails that variant alone.

Each output gets a sidecar ``NAME.json`` (settings, seed, version, timeline,
loudness, true peak, and fingerprints of the script and preset). An output
whose sidecar records the same settings, version and input fingerprints is
up to date and skipped.

Python API: ``expand_manifest`` gives ``Variant`` objects (settings inside;
``iter_manifest`` makes them one at a time, for batches too big to hold);
``render_variant`` renders one and returns its path and sidecar data — map
it over variants with any job runner, or use ``run_batch``.
"""

from __future__ import annotations

import importlib

# Past this many variants a manifest is most likely a mistake (a matrix
# multiplies fast); --max-variants lifts it.
MAX_VARIANTS = 10_000

# Loaded on first use: `meditation --help` and the CLI's option table import
# this package, and should not pay for the runner's imports.
_HOME = {
    "run_batch_cli": "command",
    "is_up_to_date": "freshness",
    "sidecar_path": "freshness",
    "check_outputs": "freshness",
    "Variant": "manifest",
    "expand_manifest": "manifest",
    "iter_manifest": "manifest",
    "validate_variant": "manifest",
    "BatchReport": "work",
    "render_variant": "work",
    "run_batch": "runner",
}

__all__ = [
    "MAX_VARIANTS",
    "Variant",
    "expand_manifest",
    "iter_manifest",
    "validate_variant",
    "check_outputs",
    "render_variant",
    "run_batch",
    "run_batch_cli",
    "is_up_to_date",
    "BatchReport",
    "sidecar_path",
]


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
