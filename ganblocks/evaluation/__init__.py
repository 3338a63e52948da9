"""Evaluation: the built-in evaluator (class head + attribute judge), torch-fidelity glue, rank proxy, figures,
and `evaluate_run(run_dir)` which writes a run's metrics.json and figures/."""

from ganblocks.evaluation import evaluator, fidelity  # noqa: F401
from ganblocks.evaluation.evaluator import Evaluator, EvaluatorTooWeakError, train_evaluator  # noqa: F401
