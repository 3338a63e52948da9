"""Learning regression: the `cpu` profile's recipe, cut to 150 steps on the tiny dataset, follows the text
clearly better than its untrained self (docs/results/learning.md section 5).

Measured (`curves/test_probe_tiny_train_rnn900.jsonl`, this test's call at steps 0/150/300): judge margin
-0.008 +- 0.039 untrained, 1.389 +- 0.033 at 150 steps (~27 s.e.). Broken on purpose (the step fed G and D
zero caption embeddings) it fails: -0.040 against -0.008. Before the rnn encoder got at least 900 pre-training
updates on small splits (`ganblocks.text.rnn.epochs_for`) the same call reached only +2.2 s.e."""

import json

import pytest

from experiments import learning_curve

STEPS = 150
# A quicker judge than the tables' (64 px, fewer renders), good enough to read real images' named attributes.
QUICK_EVALUATOR = {"renders_per_class": 40, "epochs": 10, "image_size": 64, "width": 8}


@pytest.mark.slow
def test_cpu_recipe_follows_text_clearly_above_untrained(tmp_path):
    overrides = ["profile=cpu", "data.size=tiny", "train.progress=false", "train.log_every=20",
                 "train.checkpoint_every=1000", "train.sample_every=1000"]
    points = learning_curve.curve(tmp_path / "run", tmp_path / "curve.jsonl", [0, STEPS], overrides,
                                  n_captions=1200, split="train", evaluator_kwargs=QUICK_EVALUATOR)
    real, untrained, trained = points
    assert (real["point"], untrained["step"], trained["step"]) == ("real", 0, STEPS)
    assert trained["profile"] == "cpu" and trained["split"] == "train" and trained["text_encoder"] == "rnn"
    # The judge reads real images' named attributes, or the comparison below means nothing. This quick judge's
    # attribute heads learn from free renders only (they cannot look attributes up from the class), so at 64 px
    # and 10 epochs they read 0.6-0.65 of real images' coarse attributes, against 0.44 for the best constant guess.
    assert real["coarse_accuracy"] > 0.55
    # Untrained images ignore the text: the judge scores their own captions no better than mismatched ones.
    assert abs(untrained["judge_margin"]) < 3 * untrained["judge_margin_se"] + 0.01
    # Trained ones match their own captions better, by several standard errors of the paired margin.
    se = (trained["judge_margin_se"] ** 2 + untrained["judge_margin_se"] ** 2) ** 0.5
    assert trained["judge_margin"] - untrained["judge_margin"] > 3 * se, (untrained, trained)
    assert trained["coarse_accuracy"] > untrained["coarse_accuracy"]
    lines = [json.loads(ln) for ln in (tmp_path / "curve.jsonl").read_text().splitlines()]
    assert lines == points  # every point is on disk as it was measured


def test_table_lists_every_generated_point(tmp_path):
    base = {"run": "r", "text_encoder": "bow", "kl_weight": 0.0625, "gf_dim": 16, "df_dim": 16, "condition_dim": 32,
            "batch_size": 32, "lr": 0.001, "train_seconds": 12.0, "class_accuracy": 0.1, "class_accuracy_se": 0.01,
            "coarse_accuracy": 0.3, "coarse_accuracy_se": 0.02, "r_precision": 0.05, "r_precision_se": 0.01}
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(p) for p in (
        {**base, "point": "real"}, {**base, "point": "generated", "step": 0, "log": {}},
        {**base, "point": "generated", "step": 500, "log": {"d_wrong": 0.41, "kl": 3.0}})))
    rows = learning_curve.table([path]).splitlines()
    assert len(rows) == 4  # header, rule, two generated points; the real-image line is not a step
    assert "| r | bow | 0.0625 | 16/16 | 32 | 32 | 0.001 | 500 | 12 | 0.100 ± 0.010 | 0.300 ± 0.020 | 0.050 ± 0.010 |" in rows[3]
    assert rows[3].endswith("| 0.410 |  | 3.000 |")


def test_learning_curve_needs_its_arguments(capsys):
    assert learning_curve.main(["run_dir=x"]) == 2
    assert "needs run_dir=<folder> out=<file.jsonl> steps=" in capsys.readouterr().err
