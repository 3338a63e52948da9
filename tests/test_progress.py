"""Progress bars redraw freely on a terminal and at most every 30 s into a log file, where they keep their end;
long steps end with a line naming their time and result."""

import io
import re
import sys

import pytest

from ganblocks.progress import LOG_FILE_INTERVAL_S, long_step, progress_bar


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


def test_log_file_keeps_the_bars_end_even_when_asked_not_to_leave_it(monkeypatch):
    """A bar made with leave=False (the training loop's) erased its last state: a log kept only `0%`."""
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    bar = progress_bar(total=4, file=sys.stderr, desc="stage1", leave=False)
    for _ in range(4):
        bar.update(1)
    bar.close()
    last = sys.stderr.getvalue().split("\r")[-1]
    assert last.startswith("stage1: 100%") and "4/4" in last and last.endswith("\n")


def test_long_step_ends_with_a_line_naming_time_and_result(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    with long_step("building X", "built X", total=3, unit="img") as step:
        for _ in range(3):
            step.update()
        step.result = "/data/x"
    text = sys.stderr.getvalue()
    assert "building X: 100%" in text and "3/3" in text
    assert re.search(r"\nbuilt X in \d+\.\d s -> /data/x\n$", text), text


def test_long_step_without_parts_says_it_started_and_hides_all_but_the_end_when_quiet(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    with long_step("training the evaluator", "trained the evaluator"):
        pass
    assert re.fullmatch(r"training the evaluator \.\.\.\ntrained the evaluator in \d+\.\d s\n", sys.stderr.getvalue())
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    with long_step("drawing", "drew", total=2, progress=False) as step:
        step.update(2)
    assert re.fullmatch(r"drew in \d+\.\d s\n", sys.stderr.getvalue())
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    with pytest.raises(RuntimeError):
        with long_step("failing", "failed", total=2):
            raise RuntimeError("boom")
    assert "failed in" not in sys.stderr.getvalue()  # no closing line for a step that did not finish


def test_dataset_build_shows_progress_and_says_where_it_went(tmp_path, capsys):
    from ganblocks.data import synthbirds

    root = synthbirds.build(tmp_path / "birds", "tiny", num_classes=3, images_per_class=2, workers=1)
    err = capsys.readouterr().err
    assert "rendering SynthBirds-200 tiny (6 images): 100%" in err and "6/6" in err
    assert re.search(rf"built SynthBirds-200 tiny \(6 images\) in \d+\.\d s -> {re.escape(str(root))}\n", err), err
