"""Progress bars speak in units a person reads, and stay quiet off a terminal."""

import re

from meditation import progress


def test_seconds_show_one_decimal_and_percent(capsys):
    progress.set_enabled(True)
    try:
        with progress.progress("master", 58.58884353741497, "s") as bar:
            bar.update(20.06204081632653)
            bar.refresh()
    finally:
        progress.set_enabled(None)
    err = capsys.readouterr().err
    assert "20.1/58.6 s" in err and "34%" in err
    assert not re.search(r"\d+\.\d{3,}", err), err  # no raw floats such as 20.06204081632653
    assert "s/s" not in err


def test_quiet_when_not_on_a_terminal(capsys):
    progress.set_enabled(None)  # pytest's stderr is not a terminal
    with progress.progress("master", 10.0, "s") as bar:
        bar.update(5.0)
    assert capsys.readouterr().err == ""


def test_a_length_reads_as_a_player_shows_it_hours_included():
    # Issue 18, item 17: eight hours of ambience were reported as "480:00".
    from meditation.progress import clock

    assert clock(347.4) == "5:47"
    assert clock(59.6) == "1:00"
    assert clock(3599.4) == "59:59"
    assert clock(8 * 3600) == "8:00:00"
    assert clock(3600 + 61) == "1:01:01"
