"""experiments.ca_noise: the CA code's caption signal against its noise, on known codes and a trained tiny run."""

import json
import math

import torch

from experiments import ca_noise
from ganblocks.blocks.conditioning import gaussian_kl
from tests.evaluation.test_run import train_tiny


def test_code_noise_known_answer():
    mu = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 2.0], [-1.0, -2.0]])  # variances 4/3 and 8/3 (n - 1)
    logvar = torch.full((4, 2), math.log(0.25))
    r = ca_noise.code_noise(mu, logvar)
    assert math.isclose(r["signal"], 4.0, rel_tol=1e-6) and math.isclose(r["noise"], 0.5, rel_tol=1e-6)
    assert math.isclose(r["snr"], 8.0, rel_tol=1e-6) and r["n_captions"] == 4
    assert math.isclose(r["kl"], float(gaussian_kl(mu, logvar, "sum")), rel_tol=1e-6)


def test_trained_runs_are_measured_and_a_mixture_refused(tmp_path, capsys):
    gaussian = train_tiny(tmp_path / "gaussian")
    out = tmp_path / "noise.json"
    assert ca_noise.main([f"runs={gaussian}", f"out={out}"]) == 0
    [r] = json.loads(out.read_text())["runs"]
    ctx, ca = ca_noise.code_block(str(gaussian))
    ds = ctx.dataset(64, "test")
    assert r["n_captions"] == ds.embeddings.shape[0] * ds.embeddings.shape[1]
    mu, logvar = ca.encode(ds.embeddings.reshape(-1, ds.embeddings.shape[-1]).float())
    assert math.isclose(r["noise"], float(logvar.exp().mean(0).sum()), rel_tol=1e-5)
    assert math.isclose(r["snr"], r["signal"] / r["noise"], rel_tol=1e-9) and r["conditioning"] == "gaussian"

    from experiments.config import compose
    from ganblocks.training import train

    for name in ("none", "mixture"):
        cfg = compose(["profile=smoke", "pipeline=stage1", f"model.conditioning={name}", "train.progress=false",
                       "train.max_steps=1", "train.checkpoint_every=1", "train.sample_every=1"])
        assert train(cfg, tmp_path / name)["status"] == "finished"
    assert ca_noise.main([f"runs={tmp_path / 'none'}", f"out={out}"]) == 0
    [r] = json.loads(out.read_text())["runs"]
    ctx, fc = ca_noise.code_block(str(tmp_path / "none"))
    code = fc(ds.embeddings.reshape(-1, ds.embeddings.shape[-1]).float()).code
    assert r["noise"] == 0 and r["snr"] is None and r["kl"] == 0
    assert math.isclose(r["signal"], float(code.var(0).sum()), rel_tol=1e-5)
    out2 = tmp_path / "noise2.json"
    assert ca_noise.main([f"runs={gaussian},{tmp_path / 'mixture'}", f"out={out2}"]) == 2
    err = capsys.readouterr().err
    assert "no Gaussian CA" in err and "model.conditioning=mixture" in err and not out2.exists()
    assert ca_noise.main([f"runs={tmp_path / 'nowhere'}", f"out={out2}"]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_bad_command_lines_and_run_folders_are_one_line_and_exit_2(tmp_path, capsys):
    # no traceback and nothing written: an unknown key (run_dir= as experiments.evaluate takes it), a split that
    # is neither train nor test, a run folder without its checkpoint, a config.yaml that is not YAML
    from omegaconf import OmegaConf

    from experiments.config import compose

    out = tmp_path / "noise.json"
    assert ca_noise.main([f"run_dir={tmp_path}", f"out={out}"]) == 2
    assert "unknown setting(s) ['run_dir']" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    OmegaConf.save(compose(["profile=smoke", "pipeline=stage1"]), unfinished / "config.yaml")
    assert ca_noise.main([f"runs={unfinished}", f"out={out}", "split=val"]) == 2
    assert "split='val'" in capsys.readouterr().err
    assert ca_noise.main([f"runs={unfinished}", f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert str(unfinished) in err and "final.pt" in err and "Traceback" not in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("model: [\n")
    assert ca_noise.main([f"runs={broken}", f"out={out}"]) == 2
    assert str(broken / "config.yaml") in capsys.readouterr().err and not out.exists()
