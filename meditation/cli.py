"""The command line: parse options, compose the stages, report one line.

Every user error becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__
from .errors import DISK_FULL, MeditationError, install_hint, one_line

# Everything else is imported inside main's handlers, on first use: a Ctrl-C
# during start-up is then one line too, and `meditation --help` and `voices`
# load no numpy (tests/test_startup.py). Each such import says so (PLC0415).

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        raise MeditationError(
            message if self.prog == "meditation" else f"{self.prog.split()[-1]}: {message}"
        )


def _setting_options(p: argparse.ArgumentParser, use) -> None:
    """One option per setting that ``use`` honours, straight from the settings schema."""
    from .settings import Kind, Role, Use, format_duration, specs_for  # noqa: PLC0415 - see the note at the top

    S = argparse.SUPPRESS  # only options the user gives override the script's front matter
    for spec in specs_for(use):
        if use is Use.AMBIENT and spec.ambient_help:
            spec = dataclasses.replace(spec, help=spec.ambient_help)
        if use is Use.TIMER and spec.timer_help:
            spec = dataclasses.replace(spec, help=spec.timer_help)
        if spec.key == "script":
            p.add_argument("script", nargs="?", default=S, help=spec.help + " (default: the dream)")
            continue
        if spec.kind is Kind.BOOL:
            action = "store_false" if spec.default else "store_true"
            p.add_argument(
                spec.option,
                dest=spec.key,
                action=action,
                default=S,
                help=("don't " if spec.default else "") + spec.help,
            )
            continue
        default = spec.default
        if spec.kind is Kind.DURATION and default is not None:
            default = format_duration(default)
        shown = (
            f" (default {default})" if default not in (None, "") and spec.key != "output" else ""
        )
        names = [spec.short, spec.option] if spec.short else [spec.option]
        metavar = {
            Kind.DURATION: "DUR",
            Kind.PATH: "DIR" if spec.role is Role.OUTPUT_FOLDER else "FILE",
            Kind.NAMES: "A,B",
            Kind.DURATIONS: "T,T",
            Kind.INTEGER: "N",
            Kind.TEXT: "TEXT",
            Kind.TABLE: "TEXT",
            Kind.NUMBER: spec.unit if spec.unit.isalpha() else "X",
        }.get(spec.kind, "VALUE")
        p.add_argument(
            *names,
            dest=spec.key,
            default=S,
            metavar=metavar,
            help=(spec.help + shown).replace("%", "%%"),
        )


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--progress",
        choices=["auto", "on", "off"],
        default=argparse.SUPPRESS,
        help="progress bars (default: on a terminal)",
    )
    parser = _Parser(
        prog="meditation",
        description="Turn a written meditation into a finished audio track.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"meditation {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    from .settings import Use  # noqa: PLC0415 - see the note at the top

    render = sub.add_parser(
        "render", help="render a script to an audio file (the default command)", parents=[common]
    )
    _setting_options(render, Use.RENDER)
    render.add_argument(
        "--explain",
        action="store_true",
        help="print what the soundscape plays in each scene and the words that chose it; render nothing",
    )
    ambient = sub.add_parser(
        "ambient", help="render a soundscape alone, for any length", parents=[common]
    )
    _setting_options(ambient, Use.AMBIENT)
    # Timer sessions (issue 22): a sit between bells; its options come from the schema (Use.TIMER).
    timer = sub.add_parser(
        "timer", help="a silent or ambient sit between bells, e.g. 'timer 20m'", parents=[common]
    )
    timer.add_argument("duration", metavar="DUR", help="length of the sit, e.g. 20m")
    _setting_options(timer, Use.TIMER)
    sub.add_parser("voices", help="list usable voices: engine, language, gender, sample rate, kind")
    _say_parser(sub, common)
    soundscapes = sub.add_parser(
        "soundscapes", help="list soundscape presets, or show one's layers, scenes and cues"
    )
    soundscapes.add_argument("name", nargs="?", help="a preset name or .toml path to show")
    batch = sub.add_parser("batch", help="render every variant of a manifest", parents=[common])
    batch.add_argument("manifest")
    from .batch.command import add_batch_options  # noqa: PLC0415 - start-up: batch loads only when asked for

    add_batch_options(batch)
    cache = sub.add_parser(
        "cache",
        help="show or clear the speech cache",
        description=_CACHE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cache.add_argument(
        "action",
        nargs="?",
        choices=["clear", "path"],
        help="clear: remove every cached sentence; path: print the cache folder "
        "(none: say where it is, how much it holds, and what the actions do)",
    )
    # The web studio (issue 12): its own options, not render settings.
    studio = sub.add_parser("studio", help="write, shape and hear a meditation in a local web page")
    studio.add_argument(
        "--dir", default=".", help="folder the studio may read and write (default: the current one)"
    )
    studio.add_argument(
        "--port",
        type=int,
        default=8765,
        help="port to listen on (default 8765; 0 picks a free one)",
    )
    studio.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this computer only)",
    )
    studio.add_argument("--open", action="store_true", help="open the page in a web browser")
    _plot_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``meditation`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _standard_streams()
    argv = _with_command(argv)
    previous = _on_sigterm_unwind()
    try:
        args = _parser().parse_args(argv)
        from . import progress  # noqa: PLC0415 - see the note at the top

        progress.set_enabled(
            {"auto": None, "on": True, "off": False}[getattr(args, "progress", "auto")]
        )
        status = _COMMANDS[args.command or "render"](args)
        _flush_stdout()
        return status
    except MeditationError as exc:
        _tell(f"meditation: error: {one_line(str(exc))}")
        return 2
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except BrokenPipeError:
        # `meditation voices | head`: the reader left; say nothing more (Python's own exit would print a traceback).
        _discard_stdout()
        return 0
    except Exception as exc:
        # Ctrl-C while a native module initializes comes out as another
        # error (scipy: "ImportError: initialization failed") caused by it.
        cause = _interruption(exc)
        if cause is not None:
            return _interrupted(cause)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            # A full disk anywhere (the speech cache, a spool file): one line, like a failed output.
            where = f" writing {exc.filename}" if exc.filename else ""
            _tell(f"meditation: error: disk full{where} ({exc.strerror})")
            return 2
        raise
    finally:
        from ._threads import stop_workers  # noqa: PLC0415 - after the command, to keep start-up lean

        stop_workers()  # before the interpreter finalizes (issue 18, item 4)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _with_command(argv: list[str]) -> list[str]:
    """``argv`` with ``render`` put in where no command is named (``meditation ok.md`` renders it).

    The command is the first word after the options every command shares
    (``--progress X``), never a later word: in ``meditation --title cache
    ok.md`` or ``meditation ok.md --title voices`` the word is a title.
    """
    i = 0
    while i < len(argv) and (argv[i] == "--progress" or argv[i].startswith("--progress=")):
        i += 1 if "=" in argv[i] else 2
    if i < len(argv) and (argv[i] in _COMMANDS or argv[i] in ("-h", "--help", "--version")):
        return argv
    return [*argv[:i], "render", *argv[i:]]  # `meditation` alone renders the dream


def _standard_streams() -> None:
    """Give a closed stdin, stdout or stderr (``render … >&-``) the null device.

    Otherwise the next file opened would take its number, and a helper
    process writing to "stdout" would write into it; and ``print`` would
    fail on ``sys.stdout`` being None after the file was written.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(os.open(os.devnull, os.O_RDWR), fd)  # the lowest free number is fd itself
    for name, fd in (("stdout", 1), ("stderr", 2)):
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "w", encoding="utf-8", errors="replace", closefd=False))


def _say(line: str) -> None:
    """One line on stdout (see ``_flush_stdout``)."""
    try:
        print(line)
    except OSError as exc:
        _stdout_failed(exc)


def _flush_stdout() -> None:
    """Flush stdout; a reader that left or a full device costs the report, never the exit status of the work done."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        _stdout_failed(exc)


def _stdout_failed(exc: OSError) -> None:
    """A closed pipe (``voices | head``) stops the command quietly; any other failure is one warning on stderr.

    Stdout then points at the null device, so later lines and Python's own
    flush at exit do not fail again.
    """
    _discard_stdout()
    if isinstance(exc, BrokenPipeError):
        raise exc
    _tell(f"meditation: warning: could not write to standard output ({exc.strerror})")


def _discard_stdout() -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _tell(line: str) -> None:
    """One line on stderr; if stderr cannot be written (``2>/dev/full``) the exit status still says what happened."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
        except (OSError, ValueError):
            pass


def _interrupted(exc: KeyboardInterrupt) -> int:
    """Report Ctrl-C or SIGTERM in one line; SIGTERM exits 128 + 15, as a shell reports it."""
    from ._lifecycle import Terminated  # noqa: PLC0415 - see the note at the top

    terminated = isinstance(exc, Terminated)
    _forget_native_interrupt()
    _tell(f"meditation: {'terminated' if terminated else 'interrupted'}; no partial file was left")
    return 143 if terminated else 130


def _forget_native_interrupt() -> None:
    """Keep the exit status we return (130) when the interrupt passed through Python code run by a native module.

    CPython remembers a KeyboardInterrupt that left code run through
    ``PyRun_String`` (as native extensions do while importing) and then ends
    the process by SIGINT instead of with our status. Running a trivial
    expression the same way clears that note.
    """
    try:
        import ctypes  # noqa: PLC0415 - only after an interrupt

        run = ctypes.pythonapi.PyRun_String
        run.restype, run.argtypes = (
            ctypes.py_object,
            [ctypes.c_char_p, ctypes.c_int, ctypes.py_object, ctypes.py_object],
        )
        run(b"0", 258, {}, {})  # 258: Py_eval_input
    except Exception:
        pass  # another Python implementation: at worst the status is "killed by SIGINT", which shells also show as 130


def _interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (or Terminated) that caused ``exc``, if one did."""
    seen = 0
    link: BaseException | None = exc
    while link is not None and seen < 20:
        if isinstance(link, KeyboardInterrupt):
            return link
        link = link.__cause__ or link.__context__
        seen += 1
    return None


def _on_sigterm_unwind():
    """Make SIGTERM raise ``Terminated`` (a KeyboardInterrupt) so it cleans up like Ctrl-C; returns the old handler."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return None

    def terminate(signum, frame):
        from ._lifecycle import Terminated  # noqa: PLC0415 - see the note at the top

        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup short
        raise Terminated()

    return signal.signal(signal.SIGTERM, terminate)


def _setting_values(args: argparse.Namespace) -> tuple[dict, dict]:
    """The settings the user gave, by key, and how to name each in messages (its option)."""
    from .settings import SCHEMA  # noqa: PLC0415 - see the note at the top

    values = {k: v for k, v in vars(args).items() if k in SCHEMA}
    labels = {k: SCHEMA[k].option for k in values}
    labels.pop("script", None)
    return values, labels


def _cmd_render(args: argparse.Namespace) -> int:
    from .preflight import check_values  # noqa: PLC0415 - see the note at the top
    from .render import render  # noqa: PLC0415 - see the note at the top
    from .script import read_script  # noqa: PLC0415 - see the note at the top
    from .settings import DEFAULT_SCRIPT, resolve_settings  # noqa: PLC0415 - see the note at the top

    values, labels = _setting_values(args)
    script_path = Path(values.pop("script", DEFAULT_SCRIPT))
    script = read_script(script_path)
    values["script"] = script_path
    if "output" not in values:
        values["output"] = Path(script_path.stem + ".mp3")
    settings = check_values(
        resolve_settings(values, script, labels=labels, relative_to=script_path.parent), script
    )
    if getattr(args, "explain", False):
        from .soundscape.words import explain_script  # noqa: PLC0415 - see the note at the top

        for line in explain_script(settings.soundscape, script, settings.words, settings.layers):
            print(line)
        return 0
    result = render(settings, script)
    _report(result)
    return 0


def _cmd_ambient(args: argparse.Namespace) -> int:
    from .preflight import check_values  # noqa: PLC0415 - see the note at the top
    from .render import render_ambient  # noqa: PLC0415 - see the note at the top
    from .settings import resolve_settings  # noqa: PLC0415 - see the note at the top

    values, labels = _setting_values(args)
    if "duration" not in values:
        raise MeditationError("ambient: the following arguments are required: --duration")
    values.setdefault("output", Path("ambient.mp3"))
    settings = check_values(resolve_settings(values, labels=labels), voice=False)
    if settings.duration_s is None:  # "--duration none": the setting is optional elsewhere
        raise MeditationError("ambient: --duration needs a length (e.g. 8h), not none")
    result = render_ambient(settings, settings.duration_s)
    _report(result)
    return 0


def _cmd_timer(args: argparse.Namespace) -> int:
    from .preflight import check_values  # noqa: PLC0415 - see the note at the top
    from .settings import resolve_settings  # noqa: PLC0415 - see the note at the top
    from .timer import check_timer, render_timer  # noqa: PLC0415 - see the note at the top

    values, labels = _setting_values(args)
    labels["duration"] = "timer: length of the sit"
    values.setdefault("output", Path("timer.mp3"))
    settings = resolve_settings(values, labels=labels)
    check_timer(settings)
    speaks = settings.opening_line is not None or settings.closing_line is not None
    settings = check_values(settings, voice=speaks)
    _report(render_timer(settings))
    return 0


def _report(result) -> None:
    """The summary line on stdout; each warning (e.g. a loudness target out of reach) as one line on stderr."""
    _say(result.summary())
    for warning in result.warnings:
        _tell(f"meditation: warning: {one_line(warning)}")


def _cmd_voices(args: argparse.Namespace) -> int:
    from .voices import DEFAULT_VOICE, ENGINES, list_voices  # noqa: PLC0415 - start-up: only this command lists voices

    rows = []
    for voice_id in list_voices():
        engine, _, name = voice_id.partition(":")
        info = ENGINES[engine].describe(name)
        rows.append(
            (
                # The default, then the other neural voices: the ones to choose from.
                (voice_id != DEFAULT_VOICE, not info.neural),
                voice_id + (" (default)" if voice_id == DEFAULT_VOICE else ""),
                engine,
                info.language or "-",
                info.accent or "-",
                info.gender or "-",
                f"{info.sample_rate} Hz" if info.sample_rate else "-",
                "yes" if info.neural else "no",
            )
        )
    rows.sort(key=lambda row: row[0])  # stable: each engine keeps its own order
    table = [("voice", "engine", "language", "accent", "gender", "sample rate", "neural")]
    table += [row[1:] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        _say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_soundscapes(args: argparse.Namespace) -> int:
    from .soundscape import list_presets, load_preset  # noqa: PLC0415 - start-up: the soundscape package loads numpy

    if args.name == "auto":
        from .soundscape.words import describe_words, load_words  # noqa: PLC0415 - start-up: only this command

        print(describe_words(load_words()))
        return 0
    if args.name:
        from .soundscape.reference import describe_preset  # noqa: PLC0415 - start-up: only this command

        print(describe_preset(load_preset(args.name)))
        return 0
    presets = list_presets()
    width = max(len(p.name) for p in presets)
    for preset in presets:
        _say(f"{preset.name:<{width}}  {preset.description}")
    _say(f"{'auto':<{width}}  the script's own words choose, scene by scene (render --explain)")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import run_batch_cli  # noqa: PLC0415 - start-up: batch loads only when asked for

    return run_batch_cli(args)


def _cmd_cache(args: argparse.Namespace) -> int:
    from .cache import SpeechCache  # noqa: PLC0415 - start-up: only this command

    cache = SpeechCache()
    if args.action == "clear":
        _say(f"removed {cache.clear()} cached segments from {cache.folder}")
    elif args.action == "path":
        _say(str(cache.folder))
    else:
        _say(f"speech cache: {cache.folder} ({cache.count()} cached segments)")
        _say(_CACHE_HELP)
    return 0


_CACHE_HELP = """\
Synthesized sentences are kept here, so a render that speaks the same text with
the same voice, rate and sample rate skips the voice (--no-cache bypasses it).
  meditation cache path    print the folder (MEDITATION_CACHE_DIR moves it)
  meditation cache clear   remove every cached sentence (it refills as you render)"""


def _cmd_studio(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401, PLC0415 - optional extra (studio)
        import uvicorn  # noqa: F401, PLC0415 - optional extra (studio)
    except ImportError:
        raise MeditationError(f"the studio needs its extra: {install_hint('studio')}") from None
    from .studio import serve  # noqa: PLC0415 - optional extra (studio)

    if not 0 <= args.port <= 65535:
        raise MeditationError(f"--port {args.port} is out of range (0 to 65535)")
    # Ctrl-C or SIGTERM: the server stops its renders, then re-raises the signal; main reports it
    # in one line and exits 130 or 143, as a render does.
    serve(args.dir, host=args.host, port=args.port, open_browser=args.open)
    return 0


# --- meditation say "text" --voice V -o say.wav ------------------------------------


def _say_parser(sub, common) -> None:
    say = sub.add_parser(
        "say", help="speak a line with a voice, to audition it (writes say.wav)", parents=[common]
    )
    say.add_argument("text", help="what to say (script markup works: [pause 1s], [breathe])")
    say.add_argument("--voice", default=argparse.SUPPRESS, help="voice as engine:name")
    say.add_argument("--rate", default=argparse.SUPPRESS, metavar="X", help="speaking rate")
    say.add_argument(
        "--voice-fx", dest="voice_fx", default=argparse.SUPPRESS, help="voice chain, as render's"
    )
    say.add_argument(
        "-o",
        "--output",
        default="say.wav",
        help="audio file to write; its suffix picks the format (default say.wav)",
    )


def _cmd_say(args: argparse.Namespace) -> int:
    """The line alone, through the render's own voice, chain, loudness and writer (no ambience)."""
    from .preflight import check_values  # noqa: PLC0415 - see the note at the top
    from .render import render  # noqa: PLC0415 - see the note at the top
    from .script import has_speakable_text, parse_script  # noqa: PLC0415 - see the note at the top
    from .settings import resolve_settings  # noqa: PLC0415 - see the note at the top

    if not has_speakable_text(args.text):
        raise MeditationError("say: nothing to say (give the words in quotes)")
    script = parse_script(args.text, path="<say>")
    values = {k: getattr(args, k) for k in ("voice", "rate", "voice_fx") if hasattr(args, k)}
    labels = {k: "--" + k.replace("_", "-") for k in values}
    values.update(output=Path(args.output), soundscape="none", lead_in=0.3, tail=0.6)
    settings = resolve_settings(values, script, labels=labels | {"output": "-o"})
    _report(render(check_values(settings, script), script))
    return 0


# --- meditation plot TIMINGS.json -o plan.png ----------------------------------


def _plot_parser(sub) -> None:
    plot = sub.add_parser("plot", help="draw a render's plan from its --timings JSON")
    plot.add_argument("timings", help="timings JSON written by 'meditation render --timings'")
    plot.add_argument(
        "-o",
        "--output",
        default=None,
        help="picture to write: .png, .svg or .pdf (default: beside the timings, .png)",
    )


def _cmd_plot(args: argparse.Namespace) -> int:
    from .files import check_outputs  # noqa: PLC0415 - start-up: only this command
    from .plot import check_plot_path, read_timings, write_plot  # noqa: PLC0415 - loads numpy

    timings_path = Path(args.timings)
    output = Path(args.output) if args.output else timings_path.with_suffix(".png")
    check_plot_path(output)
    check_outputs({"-o": output}, inputs=[timings_path])
    write_plot(read_timings(timings_path), output)
    _say(str(output))
    return 0


_COMMANDS = {
    "plot": _cmd_plot,
    "render": _cmd_render,
    "ambient": _cmd_ambient,
    "timer": _cmd_timer,
    "voices": _cmd_voices,
    "say": _cmd_say,
    "soundscapes": _cmd_soundscapes,
    "batch": _cmd_batch,
    "cache": _cmd_cache,
    "studio": _cmd_studio,
}
