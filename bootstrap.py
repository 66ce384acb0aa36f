"""Make ``.venv`` beside this file and install meditation into it, with only ``python3``.

    python3 bootstrap.py            # the tool
    python3 bootstrap.py test       # the tool and its test extras (any extras: plot,studio)

Why not plain ``pip install .``: Debian and Ubuntu mark their Python as
externally managed (PEP 668), so pip refuses to install into it, and their
``python3`` comes without ``ensurepip`` (it lives in the separate
``python3-venv`` package), so ``python3 -m venv`` cannot put pip in a new
environment either. This makes the environment without pip where it must and
then fetches pip's wheel from the package index, so only ``python3`` is needed.
Standard library only: nothing else exists yet when it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
# The index pip itself would use: a user's PIP_INDEX_URL wins, as it does for pip.
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def main(argv: list[str]) -> int:
    extras = ",".join(argv)
    python = VENV / "bin" / "python"
    if not python.exists():
        _make_venv()
    if subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode:
        _install_pip(python)
    target = f"{HERE}[{extras}]" if extras else str(HERE)
    return subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip", target]
    ).returncode


def _make_venv() -> None:
    try:
        import ensurepip  # noqa: F401, PLC0415  (only to learn whether this Python has it)

        with_pip = True
    except ImportError:
        with_pip = False
    print(f"bootstrap: creating {VENV}", file=sys.stderr)
    venv.EnvBuilder(with_pip=with_pip, clear=False).create(VENV)


def _install_pip(python: Path) -> None:
    """Put pip into the environment from its wheel on the index (pip runs from a wheel)."""
    request = urllib.request.Request(
        f"{INDEX}/pip/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        files = json.load(answer)["files"]
    wheels = [
        f
        for f in files
        if f["filename"].endswith("-py3-none-any.whl")
        and not f.get("yanked")
        and _version(f["filename"])  # final releases only
    ]
    newest = max(wheels, key=lambda f: _version(f["filename"]))
    print(f"bootstrap: fetching {newest['filename']}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        wheel = Path(folder) / newest["filename"]
        url = urllib.parse.urljoin(f"{INDEX}/pip/", newest["url"])
        with urllib.request.urlopen(url, timeout=300) as answer:
            wheel.write_bytes(answer.read())
        subprocess.run([python, str(wheel / "pip"), "install", "--quiet", str(wheel)], check=True)


def _version(filename: str) -> tuple[int, ...]:
    """``pip-25.1.1-py3-none-any.whl`` -> (25, 1, 1); () for a pre-release."""
    parts = filename.split("-")[1].split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else ()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
