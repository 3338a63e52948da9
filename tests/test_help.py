"""Every entry point answers --help: exit 0, its options with their defaults, and examples (issue 18)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# module -> what its help must show: options with their defaults, and an example command line.
EXPECTED = {
    "experiments.train": ["profile: auto (default), cpu, paper, small, smoke",
                          "pipeline: one_stage, stage1, tree, two_stage (default)", "upsample: nearest", "batch_size: 64", "python -m experiments.train profile=smoke"],
    "experiments.evaluate": ["run_dir=RUN", "metrics.n_samples: 1000", "metrics.names: [is, fid",
                             "python -m experiments.evaluate run_dir="],
    "experiments.sample": ["captions=required", "n=1", "seed=0", "device=cpu", "python -m experiments.sample run_dir="],
    "experiments.check_stage1": ["n_captions=1000", "split=test", "profile=auto", "`profile=cpu` (Stage-I at 64 px",
                                 "python -m experiments.check_stage1 run_dir="],
    "ablations.run": ["grid=NAME", "profile=smoke|small|paper|auto", "--dry-run", "grids: attention, ca_variants",
                      "python -m ablations.run grid=ca_variants"],
    "ablations": ["grid=NAME", "--dry-run"],
    "ablations.collect": ["out_dir=DIR", "plots=true", "samples=true", "python -m ablations.collect out_dir="],
    "ganblocks": ["list", "python -m ganblocks list upsample"],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_help_exits_zero_with_options_and_examples(module, tmp_path):
    flag = "--help"
    done = subprocess.run([sys.executable, "-m", module, flag], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "xample" in done.stdout  # Examples: / examples:
    for text in EXPECTED[module]:
        assert text in done.stdout, f"{module} {flag}: {text!r} missing from\n{done.stdout}"
    assert list(tmp_path.iterdir()) == []  # asking for help writes nothing (no Hydra outputs/ folder)


def test_short_flag_is_help_too(capsys):
    from ablations import collect, run
    from experiments import check_stage1, evaluate, sample
    from ganblocks.__main__ import main as ganblocks_main

    for main in (evaluate.main, sample.main, check_stage1.main, collect.main, run.main):
        assert main(["-h"]) == 0, main.__module__
        assert "xample" in capsys.readouterr().out, main.__module__
    with pytest.raises(SystemExit) as exit_:
        ganblocks_main(["-h"])
    assert exit_.value.code == 0


def test_help_shows_the_real_defaults(tmp_path):
    """The options listed are read from the config files: a changed default shows in the help."""
    from experiments import evaluate, train
    from experiments.usage import yaml_options

    text = train.usage()
    assert "seed: 0" in text and "hydra:" not in text and "defaults:" not in text
    assert "  metrics.seed: 0" in evaluate.usage()
    probe = tmp_path / "probe.yaml"
    probe.write_text("# header\nalpha: 3   # the alpha\nblock:\n  beta: null  # inner\nhydra:\n  x: 1\n")
    assert yaml_options(probe) == "  alpha: 3   # the alpha\n  block:\n    beta: null  # inner"
