"""One render in a child process of its own, so the studio can stop it.

Run as ``python -m meditation.studio.worker JOB.json``. The job file holds
the script path, the explicit settings (manifest keys) and the output path.
Progress and the result go to the original standard output as JSON lines;
anything the libraries print goes to standard error instead. The studio
starts it in a new session and ends a cancelled render by signalling the
whole group, voice helpers included.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from .. import progress
from .._lifecycle import die_with_parent
from ..errors import MeditationError, one_line
from ..render import render
from .shape import effective_preset, resolve

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Render the job named on the command line; exit 0 on success, 2 on a user error."""
    argv = sys.argv[1:] if argv is None else argv
    # Keep fd 1 for our messages alone; library chatter goes to stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    lock = threading.Lock()
    last = [0.0]

    def send(message: dict, *, every_s: float = 0.0) -> None:
        now = time.monotonic()
        with lock:
            if every_s and now - last[0] < every_s:
                return
            last[0] = now
            out.write(json.dumps(message) + "\n")

    def listener(stage: str, done: float, total: float | None) -> None:
        finished = total is not None and done >= total
        send(
            {"event": "progress", "stage": stage, "done": done, "total": total},
            every_s=0.0 if finished or done == 0 else 0.1,
        )

    progress.set_enabled(False)
    progress.set_listener(listener)
    try:
        job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        # A studio killed with kill -9 takes its render with it (its folder goes at the next start).
        die_with_parent(job.get("parent"), pdeathsig=job.get("pdeathsig", False))
        result = run_job(job)
    except MeditationError as exc:
        send({"event": "error", "message": one_line(exc)})
        return 2
    send({"event": "done", "result": result})
    return 0


def run_job(job: dict) -> dict:
    """Render one job (see the module docstring); returns what the page shows."""
    output = Path(job["output"])
    settings, script = resolve(
        job["text"], job["values"], name=job["name"], output=output, folder=Path(job["folder"])
    )
    # Captions beside the track, for the page's caption line and the download.
    result = render(settings.replace(captions=output.with_suffix(".vtt")), script)
    return {
        "duration_s": result.duration_s,
        "loudness_lufs": result.loudness_lufs,
        "true_peak_db": result.true_peak_db,
        "summary": result.summary(),
        "timeline": result.timeline.to_dict(),
        "levels": layer_levels(settings, result.timeline),
        "settings": result.sidecar()["settings"],
    }


def layer_levels(settings, timeline) -> list[dict]:
    """Per scene, each sounding layer's level in dB relative to the narration (from the preset)."""
    preset = effective_preset(settings)
    if preset is None:
        return [{} for _ in timeline.scenes]
    levels = []
    for scene in timeline.scenes:
        spec = preset.scenes.get(scene.name.lower(), preset.scenes.get("default"))
        offsets = spec.layers if spec is not None else {}
        levels.append(
            {
                name: round(preset.layers[name].level_db + offsets.get(name, 0.0), 1)
                for name in scene.layers
                if name in preset.layers
            }
        )
    return levels


if __name__ == "__main__":
    sys.exit(main())
