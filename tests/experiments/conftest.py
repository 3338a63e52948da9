from tests.training.conftest import tiny_cfg, tiny_data  # noqa: F401  (shared fixtures)
