"""Progress bars that suit both a terminal and a log file.

On a terminal a bar redraws as usual; when stderr is a file (a SLURM log, CI, `> log.txt 2>&1`) it
updates at most every 30 seconds, so a log holds a readable trickle instead of thousands of redraws.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

LOG_FILE_INTERVAL_S = 30.0


def progress_bar(**kwargs: Any) -> tqdm:
    """`tqdm(**kwargs)`, rate-limited when stderr is not a terminal."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", LOG_FILE_INTERVAL_S)
    return tqdm(**kwargs)
