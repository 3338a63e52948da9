"""Optional TensorBoard logging of a training run (`train.tensorboard=true`): RUN/tensorboard/.

Scalars are each log.jsonl record of the loop (losses, D's real / wrong / fake scores, KL, learning rate,
images/s), tagged `<stage>/<key>` against the stage's step; images are the sample sheet written every
`train.sample_every` steps, tagged `<stage>/samples`. The loop calls the logger only where it already
writes log.jsonl and the sheets, so nothing is added to the step itself.

TensorBoard is an optional extra: `torch.utils.tensorboard` needs the `tensorboard` package
(`pip install 'ganblocks[tensorboard]'`). Without it, `train.tensorboard=true` is refused when the config
is validated, before anything trains (`missing_reason`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

KEY = "train.tensorboard"
INSTALL = "pip install 'ganblocks[tensorboard]'"
SKIPPED = ("stage", "step")  # record fields that are the tag and the x axis, not values


class Writer(Protocol):
    """The part of torch.utils.tensorboard.SummaryWriter the logger uses."""

    def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> None: ...
    def add_image(self, tag: str, img_tensor: Any, global_step: int, dataformats: str = "CHW") -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def missing_reason() -> str | None:
    """None when torch.utils.tensorboard imports; otherwise why not and how to install it."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError as error:
        return (f"{KEY}=true needs the tensorboard package, which is not installed "
                f"(importing torch.utils.tensorboard failed: {error}); install it with {INSTALL}, "
                f"or set {KEY}=false")
    return None


class TensorBoardLogger:
    """Writes the loop's log records and sample sheets to a TensorBoard event folder.

    Args:
        writer: a SummaryWriter (or anything with its add_scalar / add_image / flush / close).
    """

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    @classmethod
    def open(cls, cfg: Any, run_dir: str | Path) -> "TensorBoardLogger | None":
        """A logger writing to run_dir/tensorboard/ when `train.tensorboard` is true; None otherwise.

        Raises:
            RuntimeError: `train.tensorboard=true` but tensorboard is not installed (names the key and the
                install command).
        """
        if not bool(cfg.train.get("tensorboard", False)):
            return None
        reason = missing_reason()
        if reason is not None:
            raise RuntimeError(reason)
        from torch.utils.tensorboard import SummaryWriter

        return cls(SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard")))

    def scalars(self, record: dict[str, Any]) -> None:
        """One log.jsonl record: every finite number but the step, as `<stage>/<key>` at `record["step"]`."""
        stage, step = str(record.get("stage", "train")), int(record["step"])
        for key, value in record.items():
            if key in SKIPPED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(float(value)):
                self.writer.add_scalar(f"{stage}/{key}", float(value), step)
        self.writer.flush()

    def sheet(self, stage: str, step: int, image: Any) -> None:
        """A sample sheet (PIL image or (H, W, 3) uint8 array) as `<stage>/samples` at `step`."""
        array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.uint8)
        self.writer.add_image(f"{stage}/samples", array, int(step), dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
