"""Evaluation: the built-in evaluator (class head + attribute judge), torch-fidelity glue, the rank proxy,
figures, and `evaluate_run(run_dir, cfg=None)`, which writes a run's metrics.json and figures/."""

from ganblocks.evaluation import builtin, evaluator, fidelity, figures, rank, run, sampling  # noqa: F401
from ganblocks.evaluation.evaluator import Evaluator, EvaluatorTooWeakError  # noqa: F401
from ganblocks.evaluation.training import train_evaluator  # noqa: F401
from ganblocks.evaluation.rank import rank_images, rank_proxy  # noqa: F401
from ganblocks.evaluation.run import evaluate_run  # noqa: F401
