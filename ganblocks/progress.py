"""Progress that suits both a terminal and a log file: bars for long loops, a closing line for long steps.

On a terminal a bar redraws as usual; when stderr is a file (a SLURM log, CI, `> log.txt 2>&1`) it
updates at most every 30 seconds and is left in place when it closes, so a log holds a readable trickle
that ends at 100 % instead of thousands of redraws or a lone `0%`.

A step that takes more than a few seconds (building the dataset, training the evaluator, evaluating a run,
drawing plots) runs inside `long_step`, which shows a bar when the step has countable parts and always ends
with one line on stderr saying what was done, how long it took and where the result is:

    built SynthBirds-200 default (12,000 images) in 212.4 s -> ~/.cache/ganblocks/synthbirds/default-seed0-...
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterator

from tqdm.auto import tqdm

LOG_FILE_INTERVAL_S = 30.0


def progress_bar(**kwargs: Any) -> tqdm:
    """`tqdm(**kwargs)` on stderr; when stderr is not a terminal, rate-limited and left at its end state."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", LOG_FILE_INTERVAL_S)
        kwargs["leave"] = True  # leave=False would erase the last state: a log would keep only `0%`
    return tqdm(**kwargs)


@dataclass
class Step:
    """What a `long_step` body reports: `update(n)` advances its bar, `result` is named in the closing line."""

    bar: tqdm | None = None
    result: Any = None

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)


@contextlib.contextmanager
def long_step(doing: str, done: str, *, total: int | None = None, unit: str = "it",
              progress: bool = True) -> Iterator[Step]:
    """Run a long step: a bar `doing` over `total` parts (or a starting line), then `done in 12.3 s -> RESULT`.

    Args:
        doing: the bar's label, or the starting line when `total` is None ("training the evaluator").
        done: the closing line's start ("trained the evaluator"); " in <seconds> s" and " -> <result>"
            (when the body set `step.result`) follow.
        total: countable parts for the bar; None shows a starting line instead.
        progress: False hides the bar and the starting line; the closing line is always written.

    The closing line is written only when the body finishes without an exception.
    """
    start = time.perf_counter()
    step = Step()
    if progress and total is not None:
        step.bar = progress_bar(total=total, desc=doing, unit=unit, file=sys.stderr, dynamic_ncols=True)
    elif progress:
        tqdm.write(f"{doing} ...", file=sys.stderr)
    try:
        yield step
    finally:
        if step.bar is not None:
            step.bar.close()
    report_done(done, time.perf_counter() - start, step.result)


def report_done(done: str, seconds: float, result: Any = None) -> None:
    """The closing line of a long step on stderr: `DONE in 12.3 s -> RESULT` (kept clear of open bars)."""
    tqdm.write(f"{done} in {seconds:.1f} s" + (f" -> {result}" if result is not None else ""), file=sys.stderr)
