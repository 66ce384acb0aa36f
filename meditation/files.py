"""File safety: what a run may write, checked before any work starts.

Rules, for every command:

* an output is never an input of the same run (the script, a preset, a
  manifest, a cover or a recording), never another output of the same run,
  and never a folder or a special file;
* an output's folder exists and can be written to (probed by creating and
  removing a file, which also catches read-only file systems);
* an existing file is only ever replaced when meditation can prove it wrote
  it: every file the tool commits is recorded in a small ledger (its path,
  device, inode, size and modification time, one JSON object a line), and a
  file whose record no longer matches — a user's own file, or ours edited
  since — is left alone;
* an output name holds no control character (a newline, a tab, an escape).

Writing itself is atomic, one sequence for every file (``commit_temporary``,
used by the audio writer in ``meditation.export`` and by ``atomic_write_text``
and ``atomic_write_bytes`` for side files): a temporary file beside the target,
checked again, renamed into place when complete, then recorded here.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import stat
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from ._lifecycle import create_temporary, orphaned
from .errors import DISK_FULL, ExportError, MeditationError, describe_write_error

__all__ = [
    "check_outputs",
    "check_name",
    "check_parent",
    "probe_once",
    "check_replaceable",
    "record_written",
    "written_by_us",
    "ledger_path",
    "InputError",
    "check_input",
    "read_input",
    "all_or_nothing",
    "commit_temporary",
    "make_folder",
    "atomic_write_text",
    "atomic_write_bytes",
]

_LEDGER_MAX_BYTES = 1 << 20


def ledger_path() -> Path:
    """Where the record of written files lives (``MEDITATION_STATE_DIR`` overrides the platform's state folder).

    One JSON object per line: a path cannot break a record (a newline in a
    name is escaped inside its string). The earlier ``written.log``
    (space-separated, forgeable by a name with a newline) is not read: a file
    recorded only there is treated as the user's until written again.
    """
    override = os.environ.get("MEDITATION_STATE_DIR")
    if override:
        return Path(override) / "written.jsonl"
    return Path(platformdirs.user_state_dir("meditation", appauthor=False)) / "written.jsonl"


def _record(path: Path, st: os.stat_result) -> dict:
    # ensure_ascii keeps undecodable bytes (surrogate escapes) and every control character escaped.
    return {
        "dev": st.st_dev,
        "ino": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "path": _canonical(path),
    }


def _canonical(path: Path) -> str:
    """The path with its folder's links resolved: one spelling per file, so a record matches however it is named."""
    absolute = os.path.abspath(path)
    return os.fsdecode(
        os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    )


def _records(ledger: Path) -> Iterator[dict]:
    """The well-formed records of the ledger; anything else (a torn or foreign line) is skipped."""
    with open(ledger, "rb") as f:
        data = f.read(4 * _LEDGER_MAX_BYTES)
    for line in data.split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and set(record) == _FIELDS:
            yield record


_FIELDS = {"dev", "ino", "size", "mtime_ns", "path"}


def record_written(path: str | Path) -> None:
    """Remember that meditation wrote ``path`` as it is now (call right after the rename)."""
    path = Path(path)
    try:
        line = json.dumps(_record(path, path.stat()), ensure_ascii=True) + "\n"
        ledger = ledger_path()
        ledger.parent.mkdir(parents=True, exist_ok=True)
        if ledger.exists() and ledger.stat().st_size > _LEDGER_MAX_BYTES:
            _compact(ledger)
        # One short O_APPEND write per record: concurrent writers (batch workers) never interleave.
        fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)
    except OSError:
        pass  # without a record the file is merely treated as the user's next time: safe


def written_by_us(path: str | Path) -> bool:
    """True when a record names ``path`` itself and its stat (device, inode, size, time) still matches."""
    path = Path(path)
    try:
        wanted = _record(path, path.stat())
        return any(record == wanted for record in _records(ledger_path()))
    except OSError:
        return False


def _compact(ledger: Path) -> None:
    """Keep only records that still describe an existing file."""
    kept = []
    for record in _records(ledger):
        try:
            if _record(Path(record["path"]), os.stat(record["path"])) == record:
                kept.append(json.dumps(record, ensure_ascii=True) + "\n")
        except (OSError, TypeError, ValueError):
            pass
    fd, tmp = tempfile.mkstemp(prefix=".written-", dir=ledger.parent)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.writelines(kept)
    os.replace(tmp, ledger)


def check_name(path: str | Path, label: str = "output") -> None:
    """Refuse an output name holding a control character (a newline, a tab, an escape): one line."""
    text = os.fsdecode(path)
    bad = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise ExportError(
            f"{label} {text!r} holds a control character ({bad!r}); choose a plain file name"
        )


def check_replaceable(path: str | Path, label: str = "output", *, force: bool = False) -> None:
    """Raise ExportError unless ``path`` is free, or a regular file meditation wrote (any regular file with ``force``)."""
    path = Path(path)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ExportError(f"{label} {str(path)!r}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ExportError(f"{label} {str(path)!r} is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise ExportError(f"{label} {str(path)!r} exists and is not a regular file")
    if not force and not written_by_us(path):
        raise ExportError(
            f"{label} {str(path)!r} already exists and was not written by meditation; "
            "move it away, choose another name, or give --force if it may be replaced"
        )


def check_outputs(
    outputs: Mapping[str, Path | None],
    *,
    inputs: Iterable[Path | None] = (),
    folders: Mapping[str, Path | None] | None = None,
    force: bool = False,
) -> None:
    """Check every output path of one run before any work starts; raise ExportError naming the first problem.

    ``outputs`` maps a label (``-o``, ``--timings``) to a file path; ``folders``
    maps a label to an output folder (``--stems``: created if missing, files
    in it follow the file rules); ``inputs`` are every file the run reads.
    ``force`` lets an existing regular file be replaced though meditation did
    not write it (``--force``); an input never is.
    """
    read = [Path(p) for p in inputs if p is not None]
    seen: dict[str, str] = {}
    for label, path in outputs.items():
        if path is None:
            continue
        path = Path(path)
        check_name(path, label)
        for other in read:
            if _same_file(path, other):
                raise ExportError(
                    f"{label} {str(path)!r} is an input of this run ({str(other)!r}); it would be overwritten"
                )
        key = os.path.realpath(path)
        if key in seen:
            raise ExportError(f"{label} {str(path)!r} is also given as {seen[key]}")
        seen[key] = label
        check_parent(path.parent if str(path.parent) else Path("."), label, path)
        check_replaceable(path, label, force=force)
    for label, folder in (folders or {}).items():
        if folder is None:
            continue
        folder = Path(folder)
        check_name(folder, label)
        key = os.path.realpath(folder)
        if key in seen:
            raise ExportError(f"{label} {str(folder)!r} is also given as {seen[key]}")
        if folder.exists() and not folder.is_dir():
            raise ExportError(f"{label} {str(folder)!r} exists and is not a folder")
        parent = folder if folder.is_dir() else folder.parent
        if not check_parent(parent, label, folder):
            continue
        if folder.is_dir():
            for existing in folder.glob("*.wav"):
                check_replaceable(existing, f"{label} file", force=force)
                for other in read:
                    if _same_file(existing, other):
                        raise ExportError(
                            f"{label} {str(folder)!r} holds {existing.name}, an input of this run"
                        )
        for other_label, path in outputs.items():
            if (
                path is not None
                and _inside(Path(path), folder)
                and Path(path).suffix.lower() == ".wav"
            ):
                raise ExportError(
                    f"{other_label} {str(path)!r} is inside {label} {str(folder)!r}, where stems are written"
                )


def check_parent(folder: Path, label: str, path: Path) -> bool:
    """Check the folder an output goes in; a missing one is made when the run writes (``mkdir -p``).

    Returns whether it exists. A missing folder must be creatable: the
    nearest existing one above is a folder that can be written to.
    """
    if folder.exists():
        _check_folder(folder, label, path)
        return True
    blocker = next((p for p in folder.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ExportError(
            f"{label} {str(path)!r} is under {str(blocker)!r}, which is a file, not a folder"
        )
    if blocker is not None:
        _check_folder(blocker, label, path)
    return False


# Folders a probe file was created in, inside ``probe_once`` (None outside it).
_PROBED: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "meditation_probed", default=None
)


@contextlib.contextmanager
def probe_once() -> Iterator[None]:
    """Inside this block each folder is probed for writing once (a batch checks thousands of outputs in a few folders)."""
    token = _PROBED.set(set())
    try:
        yield
    finally:
        _PROBED.reset(token)


def _check_folder(folder: Path, label: str, path: Path) -> None:
    if not folder.exists():
        raise ExportError(f"{label} {str(path)!r}: output folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ExportError(f"{label} {str(path)!r}: {str(folder)!r} is not a folder")
    probed = _PROBED.get()
    if probed is not None and str(folder) in probed:
        return
    try:
        # Named like every other temporary file, so one left by a kill -9 is swept by the next run.
        fd, probe = create_temporary(folder / "probe")
    except OSError as exc:
        raise ExportError(
            f"{label} {str(path)!r}: cannot write in {str(folder)!r} ({(exc.strerror or str(exc)).lower()})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    if probed is not None:
        probed.add(str(folder))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(path: Path, folder: Path) -> bool:
    return os.path.realpath(path.parent) == os.path.realpath(folder)


# --- reading ----------------------------------------------------------------------


class InputError(MeditationError):
    """An input file cannot be read whole: ``kind`` says why (missing, folder, special, unreadable, large).

    The message is ``{what} 'PATH' {problem}``; callers with their own
    wording (a script's ``file: problem``) use ``problem`` and ``kind``.
    """

    def __init__(self, what: str, path: str | Path, kind: str, problem: str):
        self.path, self.kind, self.problem = os.fsdecode(path), kind, problem
        super().__init__(f"{what} {self.path!r} {problem}")


def check_input(path: str | Path, what: str) -> os.stat_result:
    """Refuse an input that is missing, a folder, or not a regular file (a FIFO would block, a device never ends).

    Raises ``InputError`` in one line: ``{what} 'PATH' is ...``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(what, path, "missing", "does not exist") from None
    except OSError as exc:
        raise InputError(what, path, "unreadable", f"cannot be read: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(what, path, "folder", "is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(what, path, "special", _NOT_REGULAR)
    return st


_NOT_REGULAR = "is not a regular file (a pipe, device or socket)"


def read_input(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The bytes of an input file, at most ``max_bytes``: every input a run reads whole comes through here.

    Checked as a regular file before it is opened, opened without blocking and
    checked again (it may have been swapped since), and read no further than
    the cap, so ``/dev/zero`` or a FIFO is one line (``InputError``), never a
    hang or a machine out of memory.
    """
    check_input(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise InputError(what, path, "special", _NOT_REGULAR)
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(what, path, "unreadable", f"cannot be read: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise InputError(
            what, path, "large", f"is larger than {_size(max_bytes)}, the limit for a {what}"
        )
    return data


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:g} MB" if n_bytes >= 1e6 else f"{n_bytes / 1e3:g} kB"


# --- writing ----------------------------------------------------------------------


def commit_temporary(tmp: Path, path: Path) -> None:
    """Move a complete temporary file into place: the one commit sequence of every file written.

    The caller has flushed and synced ``tmp``; on failure the caller removes
    it. Inside :func:`all_or_nothing` the file it replaces is kept (a hard
    link under a temporary name) until the run ends, so a failed run can put
    it back.
    """
    os.chmod(tmp, 0o644)
    run = _RUN.get()
    # Again at the last moment: the file may have appeared since the start.
    check_replaceable(path, force=run is not None and run.force)
    if orphaned():  # a worker whose parent died: nobody asked for this file any more
        raise SystemExit(143)
    backup = _keep(path) if run is not None else None
    os.replace(tmp, path)
    record_written(path)
    if run is not None:
        run.committed.append((Path(path), backup))


def make_folder(folder: Path) -> None:
    """``mkdir -p``; inside :func:`all_or_nothing`, a folder made here is removed again if the run fails."""
    folder = Path(folder)
    missing = [p for p in [folder, *folder.parents] if not os.path.lexists(p)]
    folder.mkdir(parents=True, exist_ok=True)
    run = _RUN.get()
    if run is not None:
        run.folders.extend(reversed(missing))  # outermost first


@dataclass
class _Run:
    force: bool = False
    committed: list[tuple[Path, Path | None]] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)


_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("meditation_run", default=None)


@contextlib.contextmanager
def all_or_nothing(*, force: bool = False) -> Iterator[None]:
    """Every file a run commits inside this block stays only if the whole block succeeds.

    A failure or an interrupt (a full disk writing the plot, Ctrl-C while the
    captions are written) removes what the run committed, puts back each file
    it replaced, and removes the folders it made: a failed run leaves none of
    its outputs. A block inside another joins it (a batch variant is its
    audio, side files and sidecar together). ``force``: its commits may
    replace a file meditation did not write (checked before, as ``--force``).
    """
    if _RUN.get() is not None:
        yield
        return
    run = _Run(force=force)
    token = _RUN.set(run)
    try:
        yield
    except BaseException:
        _roll_back(run)
        raise
    else:
        for _, backup in run.committed:
            if backup is not None:
                _unlink_quietly(backup)
    finally:
        _RUN.reset(token)


def _keep(path: Path) -> Path | None:
    """A hard link to the file ``path`` holds now, under a temporary name beside it (None if nothing to keep)."""
    if not os.path.lexists(path):
        return None
    try:
        fd, backup = create_temporary(path)
        os.close(fd)
        os.unlink(backup)
        os.link(path, backup)
        return backup
    except OSError:
        return None  # a file system without hard links: a failed run then keeps the new file


def _roll_back(run: _Run) -> None:
    for path, backup in reversed(run.committed):
        try:
            if backup is not None:
                os.replace(
                    backup, path
                )  # the old file, its inode and time: its record matches again
            else:
                os.unlink(path)
        except OSError:
            pass
    for folder in reversed(run.folders):
        try:
            os.rmdir(folder)  # only if empty: never anything the run did not make
        except OSError:
            pass


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file via a temporary name and rename; a failed write is one ``ExportError`` and leaves nothing."""
    _atomic_write(Path(path), text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a binary file (a picture) the way ``atomic_write_text`` writes text."""
    _atomic_write(Path(path), data)


def _atomic_write(path: Path, data: bytes) -> None:
    make_folder(path.parent)
    fd, tmp = create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        commit_temporary(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None and exc.errno in DISK_FULL:
            raise ExportError(describe_write_error(exc.errno, path)) from None
        raise
