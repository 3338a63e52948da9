from tests.evaluation.fixtures import evaluator, real  # noqa: F401  (shared fixtures)
