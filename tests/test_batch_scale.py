"""A batch of a hundred thousand variants lists them in the memory of a thousand (issue 18, item 9)."""

import os
import subprocess
import sys

import pytest

from meditation.batch import expand_manifest
from meditation.batch.manifest import DigestSet, iter_manifest
from meditation.errors import ManifestError


def _manifest(folder, rates: int, seeds: int):
    """rates × seeds variants of one tiny script; a dry run renders none of them."""
    (folder / "s.md").write_text("# Rest\n\nBreathe in.\n", encoding="utf-8")
    rate_list = ", ".join(f"{0.5 + i * 0.001:.3f}" for i in range(rates))
    path = folder / f"m{rates * seeds}.toml"
    path.write_text(
        'output = "{script}-{seed}-{rate}.mp3"\n'
        '[defaults]\nscript = "s.md"\nvoice = "pyttsx3"\nsoundscape = "none"\n'
        f"[matrix]\nrate = [{rate_list}]\nseed = {list(range(seeds))}\n",
        encoding="utf-8",
    )
    return path


def _dry_run(manifest, out) -> tuple[int, list[str]]:
    """Peak resident memory (KB) of `meditation batch --dry-run` and its stdout lines."""
    with open(out, "w", encoding="utf-8") as stdout, open(f"{out}.err", "w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meditation",
                "batch",
                str(manifest),
                "--dry-run",
                "--max-variants",
                "1000000",
            ],
            stdout=stdout,
            stderr=stderr,
        )
        # This child's own peak (RUSAGE_CHILDREN would be the largest of every child so far).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, open(f"{out}.err", encoding="utf-8").read()
    return usage.ru_maxrss, open(out, encoding="utf-8").read().splitlines()


@pytest.mark.slow
def test_dry_run_memory_does_not_grow_with_variants(tmp_path):
    small, small_lines = _dry_run(_manifest(tmp_path, 10, 100), tmp_path / "small.txt")
    large, large_lines = _dry_run(_manifest(tmp_path, 100, 1000), tmp_path / "large.txt")
    assert len(small_lines) == 1_000
    assert len(large_lines) == 100_000
    assert len(set(large_lines)) == 100_000
    assert all(line.lstrip().startswith("render  s-") for line in large_lines)
    assert large_lines[-1].endswith("s-999-0.599.mp3")
    # Before: about 2.6 KB per variant (the 100,000 took some 440 MB more than the 1,000).
    assert large <= 1.3 * small + 20_000, f"{large} KB for 100,000 variants, {small} KB for 1,000"


def test_variants_are_made_one_at_a_time(tmp_path):
    """The first variants come before a later one's mistake is found: nothing holds them all."""
    manifest = _manifest(tmp_path, 1, 3)
    manifest.write_text(
        manifest.read_text(encoding="utf-8")
        + '[[variants]]\nname = "lost"\nscript = "missing.md"\n',
        encoding="utf-8",
    )
    made = iter_manifest(manifest, validate=False)
    assert [next(made).label[:9] for _ in range(3)] == ["matrix #1", "matrix #2", "matrix #3"]
    with pytest.raises(ManifestError, match="variant 'lost'.*missing.md"):
        next(made)
    with pytest.raises(ManifestError, match="variant 'lost'.*missing.md"):
        expand_manifest(manifest, validate=False)  # the list: the same refusal, before any variant


def test_two_variants_writing_one_file_are_named_both(tmp_path):
    """Only digests of the outputs are kept; the message still names the first writer."""
    (tmp_path / "s.md").write_text("# Rest\n\nBreathe in.\n", encoding="utf-8")
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        'output = "{script}-{rate}.mp3"\n[defaults]\nscript = "s.md"\nvoice = "pyttsx3"\n'
        'soundscape = "none"\n[matrix]\nrate = [0.9, 1.0]\nseed = [1, 2, 3]\n',
        encoding="utf-8",
    )
    with pytest.raises(ManifestError) as err:
        expand_manifest(manifest, validate=False)
    message = str(err.value)
    assert (
        "matrix #2 (rate=0.9, seed=2) and matrix #1 (rate=0.9, seed=1) would both write" in message
    )
    assert "s-0.9.mp3" in message


def test_digest_set_keeps_each_digest_once_through_growth():
    digests = DigestSet(1)
    values = [(i * 0x9E3779B97F4A7C15) % (1 << 64) for i in range(1, 5_001)] + [0]
    assert all(digests.add_new(v) for v in values)
    assert not any(digests.add_new(v) for v in values)
    assert not digests.add_new(1)  # 0 is the empty mark: 0 and 1 are one digest
    assert len(digests) == len(values)
