"""Caches of judge-scored numbers are keyed by the scoring protocol: results computed before R-precision and the
rank proxy read a caption only on the attributes judged at the images' size (Dec 2026) are not reused."""

import json

import pandas as pd
import torch

from ganblocks.evaluation import reference
from ganblocks.evaluation.samples import EvalSamples
from ganblocks.io import stable_hash

REFERENCE_BEFORE_RULE = 3  # reference.VERSION when the real row's R-precision still scored unseen attributes
RANK_BEFORE_RULE = ("rank-proxy-v2 (text: share of named attributes the judge reads; realism: distance to the "
                    "3rd-nearest real image in content + style features)")


def test_a_real_row_cached_before_the_judged_at_size_rule_is_recomputed(monkeypatch):
    samples = EvalSamples(fake=torch.zeros(2, 3, 8, 8, dtype=torch.uint8), real=torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    calls = []

    def metric(name):
        def score(s):
            calls.append(name)
            return {name: {"value": float(len(calls))}}
        return score

    current = reference.VERSION
    monkeypatch.setattr(reference, "VERSION", REFERENCE_BEFORE_RULE)
    old = reference.real_reference(samples, ["r_precision"], metric, ["key"])
    monkeypatch.setattr(reference, "VERSION", current)
    new = reference.real_reference(samples, ["r_precision"], metric, ["key"])
    assert calls == ["r_precision", "r_precision"]  # scored again, not read from the old entry
    assert old["metrics"]["r_precision"]["value"] == 1.0 and new["metrics"]["r_precision"]["value"] == 2.0
    assert reference.real_reference(samples, ["r_precision"], metric, ["key"]) == new and len(calls) == 2


def test_ranks_cached_before_the_judged_at_size_rule_are_recomputed(tmp_path):
    from ablations.collect import RANKS, add_rank_proxy

    frame = pd.DataFrame({"variant": ["a", "b"], "seed": [0, 0], "status": ["ok", "ok"],
                          "attempt": ["a0", "b0"], "run_dir": ["runs/a", "runs/b"]})
    stale = {"key": stable_hash([RANK_BEFORE_RULE, "a0", "b0"]), "seed": 0, "ranks": {"a": 9.0, "b": 9.0}}
    (tmp_path / RANKS).write_text(json.dumps(stale) + "\n")
    asked = []

    def rank_fn(run_dirs):
        asked.append(sorted(run_dirs))
        return {"a": 1.0, "b": 2.0}

    out = add_rank_proxy(frame, tmp_path, rank_fn, log=lambda _: None)
    assert asked == [["a", "b"]] and list(out["rank_proxy"]) == [1.0, 2.0]
