"""``python -m meditation`` and the ``meditation`` console script."""


def run() -> int:
    """The CLI, with Ctrl-C during its start-up imports read like any other interrupt."""
    try:
        from .cli import main  # noqa: PLC0415 - inside the try: an interrupt may land in these imports
    except KeyboardInterrupt:
        import sys  # noqa: PLC0415 - already loaded; named here to keep this module import-free

        print("meditation: interrupted; no partial file was left", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":  # not when a spawned worker imports it
    raise SystemExit(run())
