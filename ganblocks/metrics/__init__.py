"""Registered metrics (`metric` kind): is, fid, kid, r_precision, r_precision_damsm,
attributes, diversity, pixelation.

Each is a class built with keyword arguments; calling it on an `EvalSamples` returns `{name: record}` where
a record carries `{value, std, n_samples, splits, evaluator, evaluator_accuracy, real_split, seed, ...}`.
"""

from ganblocks.metrics import base, damsm_rprecision, diversity, fidelity, judge, pixelation  # noqa: F401
from ganblocks.metrics.base import EvalSamples, caption_scores, caption_values  # noqa: F401
