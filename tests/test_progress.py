"""Progress: sparse plain lines when stderr is a log file, the tqdm bar on a terminal."""

import io

import mfpde.progress as progress
from mfpde.progress import Progress


def test_a_log_gets_a_line_per_tenth_not_per_step():
    log = io.StringIO()  # isatty() is False, as for a CI log or a batch system's output file
    bar = Progress(4.0, "pde n=16 p=1", stream=log)
    for _ in range(1000):
        bar.update(0.004)
    bar.close()
    lines = log.getvalue().splitlines()
    assert 10 <= len(lines) <= 11, lines
    assert lines[0].startswith("pde n=16 p=1:  10% t=0.400/4.000") and "100% t=4.000/4.000" in lines[-1]
    assert "\r" not in log.getvalue()


def test_the_last_line_is_not_repeated_when_a_rounding_remainder_follows():
    log = io.StringIO()
    bar = Progress(0.5, "pde", stream=log)
    for dt in (0.125, 0.11, 0.015, 0.125, 0.125 - 1e-12, 1e-12):
        bar.update(dt)
    bar.close()
    assert log.getvalue().count("100% t=0.500/0.500") == 1, log.getvalue()


def test_a_slow_run_writes_a_line_every_30_seconds(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    log = io.StringIO()
    bar = Progress(1000, "particle runs", stream=log, label="runs")
    for _ in range(5):          # 0.5% done per 31 s: only the clock triggers lines
        clock[0] += 31.0
        bar.update(1)
    assert log.getvalue().splitlines() == [f"particle runs:   0% runs={k}/1000 ({31 * k} s)" for k in range(1, 6)]

class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_the_bar():
    term = Terminal()
    bar = Progress(2.0, "particles N=8 seed=0", stream=term)
    assert bar.bar is not None
    bar.update(1.0)
    bar.close()
    assert "particles N=8 seed=0" in term.getvalue() and "|" in term.getvalue()


def test_disabled_progress_writes_nothing():
    log = io.StringIO()
    bar = Progress(1.0, "x", enabled=False, stream=log)
    bar.update(1.0)
    bar.close()
    assert log.getvalue() == ""
