"""The metric contract, as metric modules import it: `EvalSamples`, `MetricRefused` and the caption scores.

Defined in `ganblocks.evaluation.samples` (evaluation builds the samples; metrics only read them), so that
imports run one way, metrics -> evaluation. A new metric imports these names from here.
"""

from ganblocks.evaluation.samples import (  # noqa: F401 - re-exported
    EvalSamples,
    MetricRefused,
    caption_means,
    caption_scores,
    caption_se,
    caption_values,
)
