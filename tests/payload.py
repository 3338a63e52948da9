"""A crafted torch file whose unpickling writes a marker file: what a malicious run folder could hold."""

from __future__ import annotations

import pathlib
from pathlib import Path

import torch


class WritesMarker:
    """Unpickling this calls pathlib.Path.write_text(marker, "code ran"): code execution, visibly."""

    def __init__(self, marker: Path) -> None:
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return pathlib.Path.write_text, (self.marker, "code ran")


def write_crafted_checkpoint(path: Path, marker: Path) -> Path:
    """A file shaped like a ganblocks checkpoint (step, text_dim, ...) with the payload inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"stage": "stage1", "step": 1, "text_dim": 8, "generator": WritesMarker(marker)}, path)
    return path


def payload_is_live(tmp: Path) -> bool:
    """Positive control: a plain torch.load(weights_only=False) of such a file does run the payload."""
    marker = tmp / "control-marker"
    torch.load(write_crafted_checkpoint(tmp / "control.pt", marker), weights_only=False)
    return marker.read_text() == "code ran"


MARKER_ENV = "GANBLOCKS_TEST_MARKER"


def touch_marker(*args, **kwargs):
    """A "module:function" seam that writes the file named by $GANBLOCKS_TEST_MARKER when called."""
    import os

    pathlib.Path(os.environ[MARKER_ENV]).write_text("code ran")
    return {}
