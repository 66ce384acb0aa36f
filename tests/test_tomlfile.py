"""read_toml: every way a user's TOML file can fail becomes one line of ours."""

import pytest

from meditation.errors import ManifestError, SoundscapeError
from meditation.tomlfile import read_toml


def test_a_good_file_is_parsed(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text('name = "calm"\n[layers.river]\nlevel_db = -10.0\n', encoding="utf-8")
    assert read_toml(path, error_class=SoundscapeError) == {
        "name": "calm",
        "layers": {"river": {"level_db": -10.0}},
    }


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ManifestError) as caught:
        read_toml(path, error_class=ManifestError, what="manifest")
    assert str(caught.value) == f"{path}: no such manifest file"


def test_a_folder_is_refused_as_a_folder(tmp_path):
    with pytest.raises(SoundscapeError) as caught:
        read_toml(tmp_path, error_class=SoundscapeError)
    assert str(caught.value) == f"{tmp_path}: is a folder, not a soundscape file"


def test_bytes_that_are_not_utf8_are_refused(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('a = 1\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(SoundscapeError) as caught:
        read_toml(path, error_class=SoundscapeError)
    assert str(caught.value) == f"{path}:2:12: cannot read soundscape: not UTF-8 text"


def test_an_unreadable_file_is_refused(tmp_path):
    path = tmp_path / "locked.toml"
    path.write_text("a = 1\n", encoding="utf-8")
    path.chmod(0)
    try:
        if path.stat().st_mode & 0o444 == 0 and _can_read(path):
            pytest.skip("running as root: permissions do not stop reading")
        with pytest.raises(SoundscapeError) as caught:
            read_toml(path, error_class=SoundscapeError)
        assert str(caught.value) == f"{path}: cannot read soundscape: Permission denied"
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize(
    "text, where, reason",
    [
        ("a = 1\nb = [\n  c\n", "3:3", "invalid value"),
        ("name = 1\n[layers\n", "2:8", "expected ']' at the end of a table declaration"),
        ('name = "open\n', "1:13", "illegal character '\\n'"),
        ('a = 1\nb = "x', "2:7", "unterminated string"),
    ],
)
def test_a_syntax_error_gives_file_line_col_and_the_reason(tmp_path, text, where, reason):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SoundscapeError) as caught:
        read_toml(path, error_class=SoundscapeError)
    message = str(caught.value)
    assert message == f"{path}:{where}: soundscape is not valid TOML: {reason}", message
    assert "\n" not in message


def _can_read(path):
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True
