from tests.training.conftest import one_thread, tiny_cfg, tiny_data  # noqa: F401  (shared fixtures)
