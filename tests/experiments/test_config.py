"""compose(): the keys the ablation grids override exist, and bad input fails before any training."""

import pytest

from experiments.config import ConfigError, compose, resolve_auto_profile

GRID_KEYS = {
    "model.upsample": "bilinear", "model.residual": "relu", "model.conditioning": "mixture",
    "model.d_head": "joint", "model.stage2_d_head": "vanilla", "model.num_residual": 0,
    "model.text_twice": False, "data.name": "synthbirds", "data.text_encoder": "bow", "data.wrong": "shift",
    "loss.name": "hinge", "seed": 3,
}


def test_every_grid_key_can_be_overridden():
    cfg = compose(["profile=smoke"] + [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in GRID_KEYS.items()])
    for key, value in GRID_KEYS.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, key


@pytest.mark.parametrize("pipeline, stages", [("stage1", ["stage1"]), ("two_stage", ["stage1", "stage2"]),
                                              ("one_stage", ["one_stage"])])
def test_pipelines_list_their_stages(pipeline, stages):
    cfg = compose(["profile=smoke", f"pipeline={pipeline}"])
    assert [s.name for s in cfg.pipeline.stages] == stages


def test_presets_set_the_kl_weight_and_profiles_the_schedule():
    assert compose(["profile=smoke", "preset=official"]).loss.kl_weight == 2.0
    assert compose(["profile=smoke", "preset=paper"]).loss.kl_weight == 1.0
    paper = compose(["profile=paper"])
    assert (paper.train.epochs, paper.train.lr_halve_every, paper.train.batch_size, paper.model.stage2_size) == (600, 100, 64, 256)


def test_auto_profile_is_smoke_on_cpu_and_small_on_cuda():
    assert resolve_auto_profile([], cuda=False) == ["profile=smoke"]
    assert resolve_auto_profile(["profile=auto", "seed=1"], cuda=True) == ["profile=small", "seed=1"]
    assert resolve_auto_profile(["profile=paper"], cuda=True) == ["profile=paper"]
    assert compose([]).profile_name in ("smoke", "small")


def test_unknown_block_names_the_key_and_lists_the_registered_names():
    with pytest.raises(ConfigError, match=r"unknown upsample 'nearst' \(from model.upsample\).*nearest"):
        compose(["profile=smoke", "model.upsample=nearst"])
    with pytest.raises(ConfigError, match=r"unknown loss 'wgan' \(from loss.name\).*bce, hinge, minimax"):
        compose(["profile=smoke", "loss.name=wgan"])


def test_unknown_key_lists_the_keys_of_its_section():
    with pytest.raises(ConfigError, match=r"unknown config key 'model.upsampling'.*keys under 'model'.*upsample"):
        compose(["profile=smoke", "model.upsampling=nearest"])


def test_unknown_profile_lists_the_profiles():
    with pytest.raises(ConfigError, match=r"unknown profile 'huge'; accepted: auto, cpu, paper, small, smoke"):
        compose(["profile=huge"])


@pytest.mark.parametrize("override, message", [
    ("train.lr=-0.1", r"train.lr=-0.1 is out of range; expected a number > 0"),
    ("train.batch_size=0", r"train.batch_size=0 is out of range"),
    ("model.num_residual=-1", r"model.num_residual=-1 is out of range"),
    ("train.ema_decay=1.5", r"train.ema_decay=1.5 is out of range"),
    ("data.wrong=random", r"data.wrong='random'; expected one of \['class', 'shift'\]"),
    ("train.betas=[0.5]", r"train.betas=\[0.5\]; expected two numbers"),
    ("device=tpu", r"device='tpu'; expected auto, cpu, cuda or cuda:N"),
    ("model.gf_dim=eight", r"model.gf_dim='eight'; expected an integer"),
])
def test_bad_values_are_named_with_what_is_accepted(override, message):
    with pytest.raises(ConfigError, match=message):
        compose(["profile=smoke", override])
