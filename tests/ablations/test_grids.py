"""Grid files: every one parses, expands into runs and composes with the real experiments config."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablations.grids import GridError, expand, list_grids, load_grid, parse_grid, parse_only
from ganblocks.registry import names

GRIDS = ("ca_variants", "upsampling", "discriminator", "residual", "stages", "text_twice", "families", "color_consistency", "attention")


def test_the_issue_grids_exist():
    assert set(GRIDS) <= set(list_grids())


@pytest.mark.parametrize("name", GRIDS)
def test_grid_expands_variant_major_with_run_folders(name, tmp_path):
    grid = load_grid(name)
    assert grid.name == name and grid.description
    specs = expand(grid, tmp_path, "small", seeds=2, extra_overrides=["train.log_every=7"])
    assert len(specs) == 2 * len(grid.variants)
    first = specs[0]
    assert first.overrides[0] == "profile=small" and first.overrides[1] == "train.log_every=7"
    assert first.overrides[-1] == "seed=0" and specs[1].overrides[-1] == "seed=1"
    assert first.run_dir == tmp_path / "runs" / grid.variants[0].label / "seed0"
    assert [s.index for s in specs] == list(range(len(specs)))
    assert len({s.run_dir for s in specs}) == len(specs)


def _pieces_registered() -> bool:
    return all(names(kind) for kind in ("generator", "discriminator", "dataset", "text_encoder"))


@pytest.mark.parametrize("name", GRIDS)
def test_every_variant_composes_with_the_real_config(name, tmp_path):
    if not _pieces_registered():
        pytest.skip("models/data/text encoders are not registered in this tree yet")
    from experiments.config import compose

    for spec in expand(load_grid(name), tmp_path, "smoke", seeds=1):
        cfg = compose(list(spec.overrides))
        assert cfg.seed == 0 and cfg.profile_name == "smoke"


def test_variant_overrides_reach_the_config(tmp_path):
    if not _pieces_registered():
        pytest.skip("models/data/text encoders are not registered in this tree yet")
    from experiments.config import compose

    specs = {s.variant: s for s in expand(load_grid("ca_variants"), tmp_path, "smoke")}
    assert compose(list(specs["mixture"].overrides)).model.conditioning == "mixture"
    specs = {s.variant: s for s in expand(load_grid("discriminator"), tmp_path, "smoke")}
    cfg = compose(list(specs["vanilla"].overrides))
    assert cfg.model.d_head == "vanilla" and cfg.model.stage2_d_head == "vanilla"


def test_default_seeds_follow_the_profile(tmp_path):
    grid = load_grid("ca_variants")
    assert len(expand(grid, tmp_path, "smoke")) == 3
    assert len(expand(grid, tmp_path, "small")) == 3 * grid.default_seeds("small")


def test_unknown_grid_lists_the_grids():
    with pytest.raises(GridError, match="unknown grid 'ca_variant'.*available grids: .*ca_variants"):
        load_grid("ca_variant")


def test_bad_settings_are_named(tmp_path):
    grid = load_grid("ca_variants")
    with pytest.raises(GridError, match="its variants: none, gaussian, mixture"):
        expand(grid, tmp_path, "smoke", only=["gauss"])
    with pytest.raises(GridError, match="accepted: cpu, paper, small, smoke$"):
        expand(grid, tmp_path, "auto")
    with pytest.raises(GridError, match="use seeds=N"):
        expand(grid, tmp_path, "smoke", extra_overrides=["seed=3"])
    with pytest.raises(GridError, match="sets what grid 'ca_variants' varies \\(model.conditioning\\)"):
        expand(grid, tmp_path, "smoke", extra_overrides=["model.conditioning=none"])
    with pytest.raises(GridError, match="must be >= 1"):
        expand(grid, tmp_path, "smoke", seeds=0)
    assert [s.variant for s in expand(grid, tmp_path, "smoke", only=parse_only("[mixture,none]"))] == ["none", "mixture"]


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"name": "g", "variants": []}, "non-empty list"),
        ({"name": "g", "variants": [{"label": "a b", "overrides": ["x=1"]}]}, "must match"),
        ({"name": "g", "variants": [{"label": "a", "overrides": ["x"]}]}, "'key=value'"),
        ({"name": "g", "variants": [{"label": "a", "overrides": []}, {"label": "a", "overrides": []}]}, "duplicate"),
        ({"name": "g", "seeds": {"huge": 2}, "variants": [{"label": "a", "overrides": []}]}, "'seeds'"),
        ({"name": "g", "varients": []}, "unknown keys"),
    ],
)
def test_malformed_grid_files_are_explained(raw, match):
    with pytest.raises(GridError, match=match):
        parse_grid(raw, source="x.yaml")


def test_a_new_grid_is_one_yaml_file(tmp_path):
    (tmp_path / "loss.yaml").write_text(
        "name: loss\ndescription: GAN losses.\nseeds: 2\nvariants:\n"
        "  - {label: bce, overrides: [loss.name=bce]}\n  - {label: hinge, overrides: [loss.name=hinge]}\n"
    )
    assert list_grids(tmp_path) == ["loss"]
    grid = load_grid("loss", grid_dir=tmp_path)
    assert grid.labels == ["bce", "hinge"] and grid.default_seeds("paper") == 2
    assert Path(tmp_path).joinpath("loss.yaml").exists()


def test_curve_figures_keep_the_telling_keys_first():
    from ablations.plots import MAX_CURVES, curve_keys

    logged = ["d_fake", "d_fake_uncond", "d_real", "d_real_uncond", "d_wrong", "kl", "loss_d", "loss_g",
              "loss_g_adv", *[f"extra_{i}" for i in range(5)]]
    keys = curve_keys(logged)
    assert keys[:7] == ["loss_d", "loss_g", "loss_g_adv", "kl", "d_real", "d_wrong", "d_fake"]
    assert len(keys) == MAX_CURVES and keys[7:] == ["d_fake_uncond", "d_real_uncond", "extra_0"]
    assert curve_keys(["a", "kl"]) == ["kl", "a"]
