"""``meditation batch``: expand, check everything first, then render."""

from __future__ import annotations

from ..errors import MeditationError
from . import MAX_VARIANTS

__all__ = ["run_batch_cli", "add_batch_options"]


def add_batch_options(parser) -> None:
    """The options of ``meditation batch`` (beyond the manifest and the common ones)."""
    parser.add_argument(
        "-j", "--jobs", type=int, default=None, help="worker processes (default: number of cores)"
    )
    parser.add_argument(
        "--out-dir",
        default=None,
        help="folder for outputs, made if missing (default: beside the manifest)",
    )
    parser.add_argument(
        "--force", action="store_true", help="render even when an up-to-date output exists"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be rendered and where"
    )
    parser.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        default=True,
        help="do not reuse cached speech",
    )
    parser.add_argument(
        "--max-variants",
        type=int,
        default=MAX_VARIANTS,
        help=f"refuse manifests that make more variants (default {MAX_VARIANTS:,})",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="render on a Dask cluster: tcp://HOST:8786, or local:N for N local worker processes",
    )
    parser.add_argument(
        "--shared-folder",
        action="store_true",
        help="with --scheduler: workers write straight into --out-dir (same path on every worker)",
    )


def run_batch_cli(args) -> int:
    """``meditation batch``: expand, validate and check every output first, then render."""
    if args.jobs is not None and args.jobs < 1:
        raise MeditationError(f"-j {args.jobs}: need at least one worker")
    max_variants = getattr(args, "max_variants", MAX_VARIANTS)
    if max_variants is not None and max_variants < 1:
        raise MeditationError(f"--max-variants {max_variants}: need at least 1")
    scheduler = getattr(args, "scheduler", None)
    shared = getattr(args, "shared_folder", False)
    if scheduler is not None:
        from .cluster import parse_scheduler, require_distributed  # noqa: PLC0415 - CLI start-up: this module builds the options

        parse_scheduler(scheduler)  # a typo is refused before the manifest is read
        require_distributed()
        if args.jobs is not None:
            raise MeditationError(
                "-j counts local worker processes; with --scheduler the cluster's workers render (local:N sets their number)"
            )
    elif shared:
        raise MeditationError("--shared-folder only means something with --scheduler")
    connection = None
    if scheduler is not None and not args.dry_run:
        from .cluster import Connection  # noqa: PLC0415 - CLI start-up

        connection = Connection(
            scheduler
        )  # the workers start while the manifest is read and checked
    try:
        return _run(args, max_variants, connection, shared)
    finally:
        if connection is not None:
            connection.close()


def _run(args, max_variants, connection, shared) -> int:
    # Here, not at the top: `meditation --help` builds this module's options without them.
    from ..files import probe_once  # noqa: PLC0415
    from .freshness import check_outputs, is_up_to_date  # noqa: PLC0415
    from .manifest import expand_manifest, iter_manifest, validate_variant  # noqa: PLC0415
    from .runner import run_batch  # noqa: PLC0415

    if args.dry_run:
        # A million variants are made again for each pass rather than held: flat memory.
        def variants():
            return iter_manifest(
                args.manifest,
                out_dir=args.out_dir,
                cache=args.cache,
                validate=False,
                max_variants=max_variants,
            )

        with probe_once():
            check_outputs(
                variants,
                manifest=args.manifest,
                each=lambda v: validate_variant(v, manifest=args.manifest),
            )
        # Every check passed: now list, a line as each variant is made.
        for v in variants():
            state = "up to date" if (not args.force and is_up_to_date(v)) else "render"
            print(f"{state:>10}  {v.name}  -> {v.settings.output}")
        return 0
    every = expand_manifest(  # the runner schedules across all of them
        args.manifest,
        out_dir=args.out_dir,
        cache=args.cache,
        validate=False,
        max_variants=max_variants,
    )
    report = run_batch(
        every,
        jobs=args.jobs,
        force=args.force,
        manifest=args.manifest,
        scheduler=connection,
        shared_folder=shared,
    )
    print(report.summary())  # each failure was reported once, as it happened
    return 1 if report.failed else 0
