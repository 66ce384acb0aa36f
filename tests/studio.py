"""What the studio's in-process tests share (test_studio_api, test_studio_trust): its token and
address, its folder, and a client of the real app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the studio extra is not installed")
pytest.importorskip("tomli_w", reason="the studio extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

from meditation.studio import create_app  # noqa: E402

TOKEN = "test-token-0123456789"
HOST = "127.0.0.1:8765"
BASE = f"http://{HOST}"


def studio_folder(tmp_path: Path) -> Path:
    """The studio's folder: a folder of its own, so that its parent is outside it."""
    path = tmp_path / "studio"
    path.mkdir()
    return path


@contextmanager
def studio_client(folder: Path, *hosts: str, token: bool = True) -> Iterator[TestClient]:
    """A client of the studio app serving ``folder`` (allowed Hosts: ``HOST`` and ``hosts``),
    sending the token on every request unless ``token`` is false; ``client.studio`` is its state."""
    app = create_app(folder, token=TOKEN, hosts=[HOST, *hosts])
    headers = {"X-Studio-Token": TOKEN} if token else {}
    with TestClient(app, base_url=BASE, headers=headers) as client:
        client.studio = app.state.studio
        yield client


def processes_with(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (all descendants of one test's studio)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found
