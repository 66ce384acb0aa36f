"""`meditation batch --scheduler`: the same batch on a Dask cluster (issue 11.1).

A LocalCluster of worker processes renders exactly what the local runner
renders (bit for bit), resumes the same way, survives a worker killed
mid-variant (Dask reschedules the task), fails a variant's own error once,
and leaves no partial file.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest
from waiting import wait_until

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402 - comes with distributed

from meditation.batch import expand_manifest, run_batch  # noqa: E402
from meditation.batch.work import available_cores  # noqa: E402
from meditation.cli import main  # noqa: E402
from meditation.errors import install_hint  # noqa: E402

# Words no other test speaks (the tests share one speech cache).
SCRIPT = "# Drift\n\nClouds move slowly over the hills. [pause 1s] Nothing to do now.\n"


def _manifest(output: str, soundscape: str, rest: str, tail: str = "1") -> str:
    """A manifest of the quick voice speaking ``drift.md`` over ``soundscape``; ``rest`` adds keys."""
    return (
        f'output = "{output}"\n[defaults]\nscript = "drift.md"\nvoice = "pyttsx3"\nlead_in = 1\n'
        f'tail = {tail}\nsoundscape = "{soundscape}"\n{rest}'
    )


# Two minutes of ambience after the words: long enough that a worker holds its WAV open for a
# poll to see (20 s tracks were not, at times).
MANIFEST = _manifest("{seed}.wav", "stream", "[matrix]\nseed = [1, 2, 3, 4]\n", tail='"2m"')
# Sidecar fields that may differ between two runs of the same variant: where it was written.
_WHERE = ("output",)


SCRIPT_NAME = "drift.md"  # the shared ``folder`` holds SCRIPT under this name


@pytest.fixture
def folder(folder):
    (folder / "m.toml").write_text(MANIFEST, encoding="utf-8")
    return folder


def _batch(folder, *args, env=None):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "meditation",
            "batch",
            str(folder / "m.toml"),
            "--progress",
            "off",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def _sidecar(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in _WHERE:
        data.pop(key, None)
        data["settings"].pop(key, None)
    return data


def _session(pid):
    """The processes in session ``pid``, from /proc: a ``pgrep`` per poll took longer than a variant's write."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == pid:  # state, ppid, pgrp, then the session
                found.append(entry)
    return found


def _writer_of(pids, *folders):
    """The worker process that has an audio file open under one of ``folders`` (its render in progress)."""
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if any(target.startswith(str(f)) for f in folders) and target.endswith(".wav"):
                return int(pid)
    return None


@contextmanager
def _cluster_batch(folder, out_dir):
    """The batch on ``local:2`` in a session of its own, where its workers are found and signalled;
    its scratch folder is ``folder / "tmp"``. Whatever is left running at the end is killed."""
    scratch = folder / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"}  # Dask's worker folders
    args = ["batch", str(folder / "m.toml"), "--progress", "off", "--no-cache"]
    args += ["--scheduler", "local:2", "--out-dir", str(out_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "meditation", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _rendering_worker(proc, out_dir):
    """The pid of a worker of ``proc`` writing a variant (into its scratch folder or ``out_dir``)."""
    workers = [p for p in _session(proc.pid) if int(p) != proc.pid]
    return _writer_of(workers, out_dir.parent / "tmp", out_dir)


@contextmanager
def _local_cluster(**options):
    """A LocalCluster of worker processes that may start the pyttsx3 voice's helper process (README)."""
    with (
        dask.config.set({"distributed.worker.daemon": False}),
        distributed.LocalCluster(
            threads_per_worker=1, processes=True, dashboard_address=":0", **options
        ) as cluster,
    ):
        yield cluster


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A folder holding the manifest and its four variants rendered by the local runner
    (``local/``): what every cluster run must write, bit for bit. Rendered once for the module."""
    folder = tmp_path_factory.mktemp("reference")
    (folder / SCRIPT_NAME).write_text(SCRIPT, encoding="utf-8")
    (folder / "m.toml").write_text(MANIFEST, encoding="utf-8")
    local = _batch(folder, "-j", "1", "--no-cache", "--out-dir", str(folder / "local"))
    assert local.returncode == 0, local.stderr
    return folder


def _same_as_local(out_dir, reference):
    for seed in (1, 2, 3, 4):
        name, side = f"{seed}.wav", f"{seed}.json"
        assert (out_dir / name).read_bytes() == (reference / "local" / name).read_bytes(), name
        assert _sidecar(out_dir / side) == _sidecar(reference / "local" / side)


@pytest.mark.slow
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the rendering worker through /proc"
)
def test_local_cluster_matches_local_runner_resumes_and_survives_a_killed_worker(reference):
    # The cluster run, with a worker killed while it writes a variant.
    folder, cluster = reference, reference / "cluster"
    with _cluster_batch(folder, cluster) as proc:

        def writer():
            if proc.poll() is not None:
                return -1  # the batch ended: no worker to catch
            # local:N workers write straight into the output folder (a scheduler's workers, in their scratch folder).
            return _rendering_worker(proc, cluster)

        killed = wait_until(writer, 600, poll_s=0.01)
        assert killed and killed > 0, "no worker was caught rendering"
        os.kill(killed, signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "4 rendered, 0 failed, 0 skipped"
    assert "Traceback" not in err

    names = [f"{seed}.wav" for seed in (1, 2, 3, 4)]
    assert sorted(p.name for p in cluster.iterdir()) == sorted(
        names + [n.replace(".wav", ".json") for n in names]
    )  # nothing partial
    _same_as_local(cluster, reference)
    # No worker left behind once the batch ends.
    assert wait_until(lambda: not _session(proc.pid), 15, poll_s=0.2)

    # Resume: the client decides, exactly as locally.
    again = _batch(folder, "--no-cache", "--scheduler", "local:2", "--out-dir", str(cluster))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == "0 rendered, 0 failed, 4 skipped"
    dry = _batch(folder, "--dry-run", "--out-dir", str(cluster))
    assert [line.split()[0] for line in dry.stdout.strip().splitlines()] == ["up"] * 4


@pytest.mark.slow
def test_a_scheduler_address_gets_the_files_back_from_its_workers(reference):
    """With tcp://, workers share no folder with the client: each returns its file's bytes, written here."""
    folder, scratch = reference, reference / "scratch"
    with _local_cluster(n_workers=2, local_directory=str(scratch)) as cluster:
        address = cluster.scheduler_address
        # --no-cache as the reference was rendered: the sidecars record it.
        remote = _batch(
            folder, "--no-cache", "--scheduler", address, "--out-dir", str(folder / "remote")
        )
        assert remote.returncode == 0, remote.stderr
        assert remote.stdout.strip().splitlines()[-1] == "4 rendered, 0 failed, 0 skipped"
        # Each render went to the worker's own scratch folder, and is gone from it.
        assert not [p for p in scratch.rglob("*.wav")]
    _same_as_local(folder / "remote", reference)
    assert not [p for p in (folder / "remote").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_client_api_fails_a_variants_own_error_once_and_writes_into_a_shared_folder(folder):
    (folder / "m.toml").write_text(
        _manifest(
            "{name}.wav",
            "none",
            '[[variants]]\nname = "fine"\n[[variants]]\nname = "hour"\nduration = "1h"\n',
        ),
        encoding="utf-8",
    )
    variants = expand_manifest(folder / "m.toml")
    lines = []
    with _local_cluster(n_workers=1) as cluster, distributed.Client(cluster) as client:
        report = run_batch(
            variants, client=client, shared_folder=True, echo=lines.append, progress=False
        )
        assert report.rendered == ["fine"] and [name for name, _ in report.failed] == ["hour"]
        assert "would stretch the pauses" in report.failed[0][1]
        assert (folder / "fine.wav").is_file() and (folder / "fine.json").is_file()
        assert not (folder / "hour.wav").exists()
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]
        # The files the workers wrote count as this tool's: a forced run may replace them.
        again = run_batch(
            variants[:1], client=client, force=True, echo=lines.append, progress=False
        )
        assert again.rendered == ["fine"]
        assert run_batch(
            variants[:1], client=client, echo=lines.append, progress=False
        ).skipped == ["fine"]


def test_scheduler_errors_are_one_line(folder, capsys):
    for value, needle in (
        ("local:0", "need 1 to 1024 local workers"),
        ("http//nowhere", "write tcp://HOST:8786"),
    ):
        assert main(["batch", str(folder / "m.toml"), "--scheduler", value]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1
    assert main(["batch", str(folder / "m.toml"), "--shared-folder"]) == 2
    assert "only means something with --scheduler" in capsys.readouterr().err


def test_without_dask_the_scheduler_option_says_how_to_install_it(folder):
    code = (
        "import sys; sys.modules['distributed'] = None\n"  # as if dask[distributed] were not installed
        "from meditation.cli import main\n"
        f"raise SystemExit(main(['batch', {str(folder / 'm.toml')!r}, '--scheduler', 'local:2']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"meditation: error: --scheduler needs Dask's distributed scheduler: {install_hint('cluster')}"
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the rendering worker through /proc"
)
def test_ctrl_c_cancels_the_cluster_batch_and_leaves_no_partial_file(folder):
    out_dir = folder / "out"
    with _cluster_batch(folder, out_dir) as proc:
        wait_until(
            lambda: proc.poll() is not None or _rendering_worker(proc, out_dir), 600, poll_s=0.01
        )
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches every process of the group
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not out_dir.exists() or not [p for p in out_dir.iterdir() if p.name.startswith(".")]
    assert wait_until(lambda: not _session(proc.pid), 15, poll_s=0.2)


# --- the scheduler address (issue 18, item 6) -------------------------------------------


class _Impostor:
    """A local port that accepts connections and then stays silent or speaks first; closed by ``close``."""

    def __init__(self, greeting: bytes | None):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.greeting, self.clients, self.done = greeting, [], threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            self.clients.append(client)
            if self.greeting == b"":
                client.close()  # hangs up at once
            elif self.greeting is not None:
                client.sendall(self.greeting)

    def close(self):
        self.done.set()
        self.thread.join(5)
        for c in [*self.clients, self.server]:
            c.close()


@pytest.mark.parametrize(
    ("greeting", "needle"),
    [
        (None, "no answer within 10 s (is a Dask scheduler listening there?)"),
        (
            b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
            "the server there speaks another protocol, not Dask's",
        ),
        (b"", "the server there closed the connection without greeting: not a Dask scheduler"),
    ],
    ids=["silent", "banner", "closes"],
)
def test_a_port_that_is_no_dask_scheduler_is_refused_in_one_line(folder, capsys, greeting, needle):
    impostor = _Impostor(greeting)
    try:
        address = f"tcp://127.0.0.1:{impostor.port}"
        assert main(["batch", str(folder / "m.toml"), "--scheduler", address]) == 2
    finally:
        impostor.close()
    err = capsys.readouterr().err
    assert err == f"meditation: error: --scheduler {address}: {needle}\n"
    assert not (folder / "1.wav").exists()


def test_tls_without_certificates_and_ucx_without_its_package_are_refused_in_one_line(
    folder, capsys
):
    impostor = _Impostor(None)
    try:
        address = f"tls://127.0.0.1:{impostor.port}"
        assert main(["batch", str(folder / "m.toml"), "--scheduler", address]) == 2
    finally:
        impostor.close()
    err = capsys.readouterr().err
    assert err.startswith(f"meditation: error: --scheduler {address}: tls:// needs certificates")
    assert err.count("\n") == 1
    assert main(["batch", str(folder / "m.toml"), "--scheduler", "ucx://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "ucx:// needs Dask's UCX support" in err and err.count("\n") == 1


def test_local_workers_are_capped_like_j_with_the_same_note(folder):
    (folder / "m.toml").write_text(
        _manifest("{seed}.wav", "none", "[matrix]\nseed = [1]\n"), encoding="utf-8"
    )
    limit, cores = 2 * available_cores(), available_cores()
    many = _batch(folder, "--scheduler", "local:1000", "--out-dir", str(folder / "out"))
    assert many.returncode == 0, many.stderr
    note = (
        f"meditation: note: --scheduler local:1000 is more than this machine can run at once; "
        f"using {limit} workers ({cores} cores)"
    )
    assert many.stderr.splitlines() == [note], many.stderr
    assert (folder / "out" / "1.wav").is_file()
    j = _batch(folder, "-j", "1000", "--force", "--out-dir", str(folder / "out"))
    assert j.returncode == 0 and j.stderr.splitlines() == [
        note.replace("--scheduler local:", "-j ")
    ]
