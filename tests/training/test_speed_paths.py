"""The speed paths on CPU: the per-stage precision rule and its record, the cuda_graph flag, the graph's
warm-up/restore/static-buffer machinery (everything but the capture), and Adam's three implementations."""

import copy
import itertools
import json

import pytest
import torch
from omegaconf import OmegaConf

from experiments.config import ConfigError
from ganblocks.training import train
from ganblocks.training.graphs import GraphedStep
from ganblocks.training.build import build_stage
from ganblocks.training.step import train_step
from ganblocks.training.precision import StepPlan, make_adam, plan_stage

CUDA = torch.device("cuda")  # plan_stage only reads the device type: no GPU is needed to test the rule


def _stage_cfg(imsize):
    return OmegaConf.create({"name": "s", "imsize": imsize, "fixed": None})


def test_auto_rule_graphs_stage1_in_bf16_and_runs_stage2_in_bf16_channels_last(tiny_cfg):
    cfg = tiny_cfg()
    stage1, stage2 = plan_stage(cfg, _stage_cfg(64), CUDA), plan_stage(cfg, _stage_cfg(256), CUDA)
    assert (stage1.amp, stage1.channels_last, stage1.cuda_graph, stage1.adam, stage1.capturable) == \
        ("bf16", False, True, "fused", True)
    assert (stage2.amp, stage2.channels_last, stage2.cuda_graph) == ("bf16", True, True)
    assert "launch-bound" in stage1.rule and "compute-bound" in stage2.rule


def test_eager_stage1_takes_fp32_and_explicit_settings_win_and_are_recorded(tiny_cfg):
    eager = plan_stage(tiny_cfg("train.cuda_graph=false"), _stage_cfg(64), CUDA)
    assert (eager.amp, eager.channels_last, eager.cuda_graph, eager.capturable) == ("fp32", False, False, False)
    forced = plan_stage(tiny_cfg("train.amp=fp32", "train.channels_last=true"), _stage_cfg(256), CUDA)
    assert (forced.amp, forced.channels_last) == ("fp32", True)
    assert "overridden by train.amp=fp32" in forced.rule


@pytest.mark.parametrize("override, reason", [("train.compile=true", "train.compile=true")])
def test_auto_falls_back_to_eager_where_a_graph_cannot_run_and_true_refuses(tiny_cfg, override, reason):
    assert plan_stage(tiny_cfg(override), _stage_cfg(64), CUDA).cuda_graph is False
    with pytest.raises(ValueError, match=f"train.cuda_graph=true but {reason}"):
        plan_stage(OmegaConf.merge(tiny_cfg(override), {"train": {"cuda_graph": True}}), _stage_cfg(64), CUDA)
    assert plan_stage(tiny_cfg(), _stage_cfg(64), CUDA, world_size=2).cuda_graph is False


def test_cuda_graph_true_on_cpu_is_refused_before_training_with_the_reason(tiny_cfg):
    with pytest.raises(ConfigError, match="train.cuda_graph=true but the device is 'cpu'.*accepted: auto"):
        tiny_cfg("train.cuda_graph=true")
    with pytest.raises(ConfigError, match=r"train.cuda_graph='maybe'; expected one of \['auto', True, False\]"):
        tiny_cfg("train.cuda_graph=maybe")
    with pytest.raises(ConfigError, match=r"train.amp='fp16'; expected one of \['auto', 'bf16', 'fp32'\]"):
        tiny_cfg("train.amp=fp16")


def test_cpu_plan_is_recorded_per_stage_in_status(tiny_data, tiny_cfg, tmp_path):
    status = train(tiny_cfg("pipeline=two_stage"), tmp_path / "run")
    record = json.loads((tmp_path / "run" / "status.json").read_text())["precision"]
    assert status["status"] == "finished" and set(record) == {"stage1", "stage2"}
    for plan in record.values():
        assert (plan["amp"], plan["channels_last"], plan["cuda_graph"], plan["adam"]) == ("fp32", False, False, "for-loop")
        assert plan["rule"].startswith("CPU")


def _steps(cfg, tmp_path, graphed, n=4):
    """n steps of a fresh Stage-I: eager, or through GraphedStep's stand-in (capture=False)."""
    s = build_stage(cfg, cfg.pipeline.stages[0], 0, tmp_path, torch.device("cpu"))
    batches = list(itertools.islice(iter(s.loader), n))
    if graphed:
        s.graph = GraphedStep(s, batches[0], capture=False, step=train_step)
    for batch in batches:
        s.graph(s, batch) if graphed else train_step(s, batch)
    return s


@pytest.mark.parametrize("pipeline", ["stage1", "two_stage"])
def test_graph_machinery_warms_up_restores_and_then_steps_exactly_as_eager(tiny_data, tiny_cfg, tmp_path, pipeline):
    cfg = tiny_cfg(f"pipeline={pipeline}", "train.ema_decay=0.5", "loss.text_transform=gan_int")
    eager, graphed = _steps(cfg, tmp_path / "a", False), _steps(cfg, tmp_path / "b", True)
    for name in ("G", "D", "ema"):
        a, b = getattr(eager, name).state_dict(), getattr(graphed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    for opt in ("opt_g", "opt_d"):
        a, b = getattr(eager, opt).state_dict()["state"], getattr(graphed, opt).state_dict()["state"]
        assert all(torch.equal(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"]) and torch.equal(a[k]["step"], b[k]["step"])
                   for k in a)
    assert eager.sums.keys() == graphed.sums.keys()
    assert all(torch.equal(eager.sums[k], graphed.sums[k]) for k in eager.sums)
    assert eager.sched_g.last_epoch == graphed.sched_g.last_epoch == 4


def test_graph_refuses_capture_off_cuda(tiny_data, tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    s = build_stage(cfg, cfg.pipeline.stages[0], 0, tmp_path, torch.device("cpu"))
    with pytest.raises(ValueError, match="a CUDA graph needs a CUDA device, got cpu"):
        GraphedStep(s, next(iter(s.loader)), capture=True, step=train_step)


@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_foreach_and_fused_adam_match_the_for_loop_adam(tiny_cfg, impl):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 1))
    models = {name: copy.deepcopy(base) for name in ("for-loop", impl)}
    opts = {name: make_adam(m.parameters(), cfg, StepPlan("fp32", False, False, name, False, "test"))
            for name, m in models.items()}
    x = torch.randn(5, 3, 8, 8)
    for step in range(6):
        for name, model in models.items():
            opts[name].zero_grad()
            (model(x * (step + 1)) ** 2).mean().backward()
            opts[name].step()
    for (k, a), (_, b) in zip(models["for-loop"].state_dict().items(), models[impl].state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)
    assert not torch.equal(base[0].weight, models[impl][0].weight)  # the steps did move the weights
