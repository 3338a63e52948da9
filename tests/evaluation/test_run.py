"""evaluate_run, the CLI and the cross-run rank proxy on tiny runs really trained by ganblocks.training."""

import json
import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ganblocks.evaluation import evaluate_run, rank_proxy
from ganblocks.evaluation.evaluator import center_crop
from ganblocks.evaluation.run import DEFAULTS

PROTOCOL = {"value", "std", "n_samples", "splits", "evaluator", "evaluator_accuracy", "real_split", "seed",
            "n_captions", "image_size", "resize", "real"}
FAST = {"n_samples": 40, "n_per_caption": 4, "evaluator_size": 64, "evaluator_renders_per_class": 40,
        "evaluator_free_renders": 800, "evaluator_epochs": 10, "min_class_accuracy": 0.0, "min_attribute_accuracy": 0.0, "progress": False,
        "options": {"kid": {"subsets": 10}}, "rank_captions": 10, "rank_per_caption": 2}


def train_tiny(run_dir, seed=0):
    from experiments.config import compose
    from ganblocks.training import train

    cfg = compose(["profile=smoke", "pipeline=stage1", "train.progress=false", "train.max_steps=2",
                   "train.checkpoint_every=2", "train.sample_every=2", f"seed={seed}"])
    assert train(cfg, run_dir)["status"] == "finished"
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("run"))


def test_evaluate_run_writes_metrics_with_protocol_and_figures(run_dir):
    results = evaluate_run(run_dir, FAST)
    assert {"is", "fid", "kid", "r_precision", "attr_coarse", "attr_fine", "diversity", "pixelation"} <= set(results)
    for name, rec in results.items():
        assert PROTOCOL <= set(rec), name
        assert rec["evaluator"].startswith("ganblocks-evaluator-") and rec["real_split"] == "test"
    assert results["is"]["n_samples"] == 40 and results["is"]["splits"] == 4
    assert results["r_precision"]["n_captions"] == 10 and results["r_precision"]["splits"] == 10
    assert results["r_precision"]["chance"] == pytest.approx(0.01) and "chance" in results["attr_coarse"]
    assert "center-cropped to 64 px" in results["fid"]["resize"] and results["fid"]["image_size"] == 64
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(json.dumps(results))
    about = json.loads((run_dir / "evaluation.json").read_text())
    assert set(about["evaluator_meta"]["accuracy"]) >= {"class", "coarse", "fine"}
    assert about["figures"] == ["figures/stages.png", "figures/noise.png", "figures/interpolation.png",
                                "figures/nearest_train.png"]
    assert all((run_dir / f).stat().st_size > 1000 for f in about["figures"])


def test_real_row_scores_real_images_through_the_same_protocol_and_is_cached(run_dir):
    results = evaluate_run(run_dir, {**FAST, "figures": False})
    about = json.loads((run_dir / "evaluation.json").read_text())
    real = about["real_reference"]["metrics"]
    assert set(real) >= {"is", "fid", "kid", "r_precision", "attr_coarse", "diversity", "pixelation"}
    assert all(results[name]["real"] == real[name]["value"] for name in real if name in results)
    assert real["fid"]["value"] * 3 < results["fid"]["value"]  # one real half against the other: near
    # FAST's quick judge (800 free renders, 10 epochs, 64 px) reads coarse attributes only weakly (0.49 against
    # the constant guess's 0.44); the tables' judge is checked attribute by attribute in test_judge.py
    assert real["attr_coarse"]["value"] > real["attr_coarse"]["chance"] + 0.02
    assert real["pixelation"]["value"] == pytest.approx(1.0, abs=0.3)
    assert real["is"]["n_samples"] == 20  # n_samples (40), at most half of the 40 test images
    # cached by evaluator and dataset: a second evaluation reads the same row
    cached = list((Path(os.environ["GANBLOCKS_CACHE"]) / "real_reference").glob("*.json"))
    assert cached and evaluate_run(run_dir, {**FAST, "figures": False})["fid"]["real"] == results["fid"]["real"]


@pytest.mark.slow  # trains the tables' evaluator recipe at 128 px (~20 s on one core)
def test_grey_images_score_chance_on_the_built_in_data(run_dir):
    """The issue's check on SynthBirds itself: flat grey images scored R-precision 0.095 (chance 0.01) when
    rivals came from other classes only; now within 2 s.e. of chance, attributes at most the constant guess.
    Every distinct test caption once (400): a constant image scores all noise draws of a caption alike, so the
    captions are the sample, and at chance 0.01 a hundred of them hold about one hit, too few to estimate a s.e."""
    from ganblocks.evaluation.run import RunContext, build_samples
    from ganblocks.registry import build

    # the evaluator recipe of the tables (metrics defaults: 128 px, 60 renders per class, 12 epochs)
    recipe = {k: DEFAULTS[k] for k in ("evaluator_size", "evaluator_renders_per_class", "evaluator_epochs")}
    samples, _, _ = build_samples(RunContext(run_dir, {**FAST, **recipe, "n_samples": 400, "n_per_caption": 1}))
    samples.fake = torch.full_like(samples.fake, 128)
    samples._memo.clear()
    rec = build("metric", "r_precision")(samples)["r_precision"]
    assert abs(rec["value"] - rec["chance"]) <= 2 * rec["std"], rec
    for name, rec in build("metric", "attributes")(samples).items():
        assert rec["value"] <= rec["chance"] + 1e-12, name


def test_one_sample_refuses_fid_and_kid_and_still_writes_the_rest(run_dir, capsys):
    from experiments.evaluate import main

    (run_dir / "metrics.json").unlink(missing_ok=True)
    overrides = [f"run_dir={run_dir}", "metrics.n_samples=1", "metrics.n_per_caption=1", "metrics.names=[is,fid,kid]",
                 "metrics.figures=false"] + [f"metrics.{k}={v}" for k, v in FAST.items()
                                             if k not in ("n_samples", "n_per_caption", "options")]
    assert main(overrides) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"is"} and metrics["is"]["value"] == pytest.approx(1.0)
    refused = json.loads((run_dir / "evaluation.json").read_text())["refused"]
    assert set(refused) == {"fid", "kid"}
    assert all("metrics.n_samples" in r and "metrics.n_per_caption" in r for r in refused.values())
    out = capsys.readouterr().out
    assert "fid  refused: fid needs at least 2 generated images" in out


@pytest.mark.parametrize("setting, message", [
    ("metrics.options.r_precision_damsm.checkpoint=/no/such/damsm",
     "metrics.options.r_precision_damsm.checkpoint='/no/such/damsm': no "),
    ("metrics.options.r_precision_damsm.text_encoder=/no/t.pth", "give both text_encoder and image_encoder"),
    ("metrics.is_classifier=/no/such.pt", "metrics.is_classifier='/no/such.pt': no such file"),
    ("metrics.names=[r_precision_damsn]", "unknown metric 'r_precision_damsn' (from metrics.names)"),
])
def test_cli_refuses_bad_metric_settings_in_one_line_before_generating(run_dir, capsys, monkeypatch, setting, message):
    """A bad metric setting is one line naming it and exit 2 (it used to be a traceback), before any image."""
    from experiments.evaluate import main
    from ganblocks.evaluation import run as run_module

    def no_generation(*args, **kwargs):
        raise AssertionError("generated images before refusing the settings")

    monkeypatch.setattr(run_module, "generate", no_generation)
    assert main([f"run_dir={run_dir}", "metrics.names=[r_precision_damsm]", setting]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("experiments.evaluate: ")]  # besides the progress bar
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err


def test_image_size_judges_a_stage1_run_as_larger_images(run_dir):
    """metrics.image_size: Stage-I's 64 px images scored as 128 px ones (the stages grid compares every variant
    at Stage-II's size): generated images upsampled, real ones drawn at 128 px."""
    from ganblocks.evaluation.run import MetricSettingError, RunContext, build_samples

    fast = {**FAST, "figures": False, "names": ["fid", "r_precision"]}
    own = evaluate_run(run_dir, fast)
    large = evaluate_run(run_dir, {**fast, "image_size": 128})
    assert own["fid"]["image_size"] == 64 and large["fid"]["image_size"] == 128
    assert "generated images resized 64 -> 128 px" in large["fid"]["resize"]
    assert "generated images resized" not in own["fid"]["resize"]
    assert large["fid"]["real"] != own["fid"]["real"]  # the real row is drawn at 128 px too
    real_row = json.loads((run_dir / "evaluation.json").read_text())["real_reference"]["metrics"]["fid"]
    assert real_row["resize"].startswith("real images center-cropped to 128 px")  # (cached for every size-128 run)
    samples, _, _ = build_samples(RunContext(run_dir, {**fast, "image_size": 128}))
    assert samples.fake.shape[-2:] == samples.real.shape[-2:] == (128, 128)  # every score reads 128 px images
    # (so `Evaluator.judged_at(128)` decides which attributes count: with the tables' judge, the fine ones)
    with pytest.raises(MetricSettingError, match="metrics.image_size=8: expected a whole number of pixels"):
        evaluate_run(run_dir, {**fast, "image_size": 8})


def test_metrics_settings_resolve_against_the_whole_run_config():
    """The stages grid sets `metrics.image_size=${model.stage2_size}`: the runner passes the composed config,
    whose metrics node alone cannot resolve it (every Stage-I evaluation failed with InterpolationKeyError)."""
    from omegaconf import OmegaConf

    from ganblocks.evaluation.run import metrics_config, scored_size

    cfg = OmegaConf.create({"model": {"stage2_size": 128}, "metrics": {"image_size": "${model.stage2_size}"}})
    assert metrics_config(cfg).image_size == 128 and scored_size(metrics_config(cfg), 64) == 128
    assert metrics_config({"n_samples": 10}, cfg.metrics).image_size == 128  # a metrics node of a whole config


def test_resize_keeps_constants_and_same_sizes():
    from ganblocks.evaluation.pixels import resize

    images = torch.rand(2, 3, 16, 16)
    assert resize(images, 16) is images
    assert torch.allclose(resize(torch.full((1, 3, 16, 16), 0.25), 64), torch.tensor(0.25))
    assert resize(images, 32).shape == (2, 3, 32, 32)


def test_evaluate_run_refuses_a_weak_evaluator(run_dir):
    from ganblocks.evaluation import EvaluatorTooWeakError

    with pytest.raises(EvaluatorTooWeakError, match="min_class_accuracy"):
        evaluate_run(run_dir, {**FAST, "min_class_accuracy": 1.01, "figures": False})


def test_cli_works_from_any_folder(run_dir, tmp_path, monkeypatch, capsys):
    from experiments.evaluate import main

    monkeypatch.chdir(tmp_path)
    overrides = [f"run_dir={run_dir}", "metrics.names=[is,pixelation]", "metrics.n_samples=20",
                 "metrics.figures=false"] + [f"metrics.{k}={v}" for k, v in FAST.items()
                                             if k not in ("n_samples", "options")]
    assert main(overrides) == 0
    assert set(json.loads((run_dir / "metrics.json").read_text())) == {"is", "pixelation"}
    captured = capsys.readouterr()
    assert "is " in captured.out
    assert f"evaluated {run_dir} in " in captured.err and f"-> {run_dir / 'metrics.json'}" in captured.err


def test_cli_names_bad_arguments():
    from experiments.evaluate import UsageError, parse

    with pytest.raises(UsageError, match="missing run_dir"):
        parse(["metrics.n_samples=3"])
    with pytest.raises(UsageError, match="unknown metrics settings \\['n_sample'\\]"):
        parse(["run_dir=x", "metrics.n_sample=3"])
    with pytest.raises(UsageError, match="run_dir=.*/x holds no config.yaml.*does not exist"):
        parse(["run_dir=x", "metrics.n_samples=3"])


def test_config_group_mirrors_the_defaults():
    from experiments.evaluate import CONF

    assert OmegaConf.to_container(OmegaConf.load(CONF)) == DEFAULTS


def test_rank_proxy_across_runs_and_a_real_stand_in(run_dir, tmp_path):
    from ganblocks.data import synthbirds

    other = train_tiny(tmp_path / "other", seed=1)

    def real_renders(captions, n_per_caption, seed):
        ids = captions.class_ids.repeat_interleave(n_per_caption)
        images, _ = synthbirds.render(ids, seed + 500, 76, num_classes=20)
        return center_crop(images, 64).contiguous()

    ranks = rank_proxy({"a": run_dir, "b": other, "real": real_renders}, FAST)
    assert set(ranks) == {"a", "b", "real"}
    assert sum(r["value"] for r in ranks.values()) == pytest.approx(6.0)
    assert ranks["real"]["value"] < min(ranks["a"]["value"], ranks["b"]["value"])
    assert all(r["n_captions"] == 10 and r["n_per_caption"] == 2 for r in ranks.values())
    pair = rank_proxy([run_dir, other], FAST)
    assert set(pair) == {run_dir.name, "other"}
    assert torch.tensor([r["value"] for r in pair.values()]).sum().item() == pytest.approx(3.0)


@pytest.fixture(scope="module")
def trained_and_initial(tmp_path_factory):
    """A tiny Stage-I trained 150 steps by ganblocks.training, and the same run's step-0 generator weights."""
    from experiments.config import compose
    from ganblocks.training import train
    from ganblocks.training.checkpoint import load_checkpoint

    run_dir = tmp_path_factory.mktemp("trained")
    cfg = compose(["profile=smoke", "pipeline=stage1", "train.progress=false", "train.max_steps=150",
                   "train.checkpoint_every=150", "train.sample_every=150"])
    train(cfg, run_dir, stop_after=0)  # builds the models and checkpoints step 0
    initial = load_checkpoint(run_dir / "checkpoints" / "stage1" / "last.pt")["generator"]
    assert train(cfg, run_dir)["status"] == "finished"
    return run_dir, initial


def test_rank_proxy_puts_real_before_trained_before_untrained(trained_and_initial):
    """The issue's sanity check: real renders, then the trained run, then its own untrained weights."""
    from ganblocks.data import synthbirds
    from ganblocks.evaluation.sampling import generate
    from ganblocks.training import load_generator

    run_dir, initial = trained_and_initial
    untrained_G = load_generator(run_dir)
    untrained_G.load_state_dict(initial)

    def untrained(captions, n_per_caption, seed):
        return generate(untrained_G, captions.embeddings, n_per_caption, seed)[0]

    def real(captions, n_per_caption, seed):
        images, _ = synthbirds.render(captions.class_ids.repeat_interleave(n_per_caption), seed + 500, 76,
                                      num_classes=20)
        return center_crop(images, 64).contiguous()

    ranks = rank_proxy({"untrained": untrained, "trained": run_dir, "real": real},
                       {**FAST, "rank_captions": 30, "rank_per_caption": 2})
    real_r, trained_r, untrained_r = (ranks[n] for n in ("real", "trained", "untrained"))
    assert real_r["value"] + 2 * (real_r["sem"] + trained_r["sem"]) < trained_r["value"]
    assert trained_r["value"] + 2 * (trained_r["sem"] + untrained_r["sem"]) < untrained_r["value"]
    assert trained_r["protocol"].startswith("rank-proxy-v4") and trained_r["n_captions"] == 30


def test_synthbirds_sanity_with_its_own_evaluator(run_dir):
    """On the built-in dataset: real test images score far above noise, and own captions far above shuffled."""
    from ganblocks.evaluation.run import RunContext
    from ganblocks.evaluation.sampling import caption_pool, evaluation_captions
    from ganblocks.metrics.base import EvalSamples
    from ganblocks.registry import build

    ctx = RunContext(run_dir, FAST)
    evaluator, test = ctx.evaluator(), ctx.dataset(64)
    real = center_crop(test.images, 64).contiguous()
    caps = evaluation_captions(test, None, 0)
    pool_values, pool_images = caption_pool(test)
    own = EvalSamples(fake=real[caps.image_index], fake_class_ids=caps.class_ids, fake_values=caps.values,
                      fake_image_ids=caps.image_index, pool_values=pool_values, pool_image_ids=pool_images,
                      evaluator=evaluator)
    perm = torch.randperm(len(caps), generator=torch.Generator().manual_seed(0))
    other = caps.class_ids[perm] != caps.class_ids
    shuffled = EvalSamples(fake=real[caps.image_index][other], fake_class_ids=caps.class_ids[perm][other],
                           fake_values=caps.values[perm][other], fake_image_ids=caps.image_index[perm][other],
                           pool_values=pool_values, pool_image_ids=pool_images, evaluator=evaluator)
    r_own = build("metric", "r_precision")(own)["r_precision"]["value"]
    r_shuffled = build("metric", "r_precision")(shuffled)["r_precision"]["value"]
    # rivals come from every class: with 5 test classes a fifth of them fit the image as well as its own caption
    assert r_own > 3 * 0.01 and r_shuffled < 0.05
    noise = torch.randint(0, 256, real.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    is_real = build("metric", "is")(EvalSamples(fake=real, evaluator=evaluator))["is"]["value"]
    is_noise = build("metric", "is")(EvalSamples(fake=noise, evaluator=evaluator))["is"]["value"]
    assert is_noise < 1.5 and is_real > 1.5 * is_noise
    fid = build("metric", "fid")
    halves = fid(EvalSamples(fake=real[0::2].contiguous(), real=real[1::2].contiguous(), evaluator=evaluator))
    vs_noise = fid(EvalSamples(fake=noise[0::2].contiguous(), real=real[1::2].contiguous(), evaluator=evaluator))
    assert halves["fid"]["value"] * 3 < vs_noise["fid"]["value"]
