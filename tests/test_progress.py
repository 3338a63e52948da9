"""Progress bars redraw freely on a terminal and at most every 30 s into a log file."""

import io
import sys

from ganblocks.progress import LOG_FILE_INTERVAL_S, progress_bar


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_log_file_gets_a_rate_limited_bar(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    bar = progress_bar(total=10, file=sys.stderr)
    assert bar.mininterval == LOG_FILE_INTERVAL_S
    for _ in range(10):
        bar.update(1)
    bar.close()
    # Opening and closing lines only: no redraw per update.
    assert sys.stderr.getvalue().count("\r") <= 3


def test_terminal_keeps_tqdm_default_and_explicit_settings_win(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Stream(tty=True))
    assert progress_bar(total=1, file=sys.stderr).mininterval == 0.1
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    assert progress_bar(total=1, file=sys.stderr, mininterval=1.0).mininterval == 1.0
