"""``--duration`` once doubled a render's memory (1.16 GB against 0.5 GB): the lossy
output's true peak was checked on the whole file decoded at once, so memory grew
with the track's length. It is streamed now: a ten-minute cut costs what the
script's own length does."""

from peak import peak_kib

SCRIPT = "# Rest\n\n" + "".join(
    f"Breathe in, and let the shoulders fall, {n}. [pause 6s]\n\n"
    for n in ("one", "two", "three", "four", "five", "six")
)


def _render(tmp_path, name, *extra):
    args = ["render", tmp_path / "s.md", "-o", tmp_path / name, "--voice", "pyttsx3"]
    return [*args, "--progress", "off", *extra]


def test_duration_does_not_grow_peak_memory(tmp_path):
    (tmp_path / "s.md").write_text(SCRIPT, encoding="utf-8")
    plain, stretched = peak_kib(
        _render(tmp_path, "plain.m4a"), _render(tmp_path, "ten.m4a", "--duration", "10m")
    )
    # Before: the ten-minute M4A was decoded whole to check its true peak (+1.5 GB here).
    assert stretched <= 1.15 * plain, (plain, stretched)
