"""``meditation batch``: expand, validate everything first, then render."""

from __future__ import annotations

import sys

from ..errors import MeditationError
from .freshness import is_up_to_date
from .manifest import expand_manifest, validate_variant
from .runner import run_batch

__all__ = ["run_batch_cli"]


def run_batch_cli(args) -> int:
    """``meditation batch``: expand, validate everything first, then render."""
    if args.jobs is not None and args.jobs < 1:
        raise MeditationError(f"-j {args.jobs}: need at least one worker")
    variants = expand_manifest(args.manifest, out_dir=args.out_dir, cache=args.cache, validate=False)
    if args.dry_run:
        for v in variants:
            validate_variant(v, manifest=args.manifest)
        for v in variants:
            state = "up to date" if (not args.force and is_up_to_date(v)) else "render"
            print(f"{state:>10}  {v.name}  -> {v.settings.output}")
        return 0
    report = run_batch(variants, jobs=args.jobs, force=args.force, manifest=args.manifest)
    for name, reason in report.failed:
        print(f"meditation: failed: {name}: {reason}", file=sys.stderr)
    print(report.summary())
    return 1 if report.failed else 0
