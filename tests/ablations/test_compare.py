"""ablations.compare: a variant of one grid against a variant of another, paired by seed, with known answers."""

import json

import pytest

from ablations import compare

EVALUATOR = "ganblocks-evaluator-test"


def write_grid(folder, variant, values, *, evaluator=EVALUATOR, epochs=100, status="ok"):
    """A grid folder with one run per seed: results.jsonl rows (r_precision = values[seed]) and config.yaml."""
    rows = []
    for seed, value in enumerate(values):
        run_dir = f"runs/{variant}/seed{seed}"
        (folder / run_dir).mkdir(parents=True)
        (folder / run_dir / "config.yaml").write_text(
            f"seed: {seed}\nrun_dir: outputs/{folder.name}/{seed}\ndata:\n  text_encoder_options:\n    epochs: {epochs}\n")
        for metric, v in (("r_precision", value), ("attr_coarse", 0.3)):
            rows.append(dict(attempt=f"{folder.name}-{seed}", n_rows=2, variant=variant, seed=seed, status=status,
                             metric=metric, value=v, evaluator=evaluator, run_dir=run_dir))
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def grids(tmp_path):
    a = write_grid(tmp_path / "a", "gaussian", [0.05, 0.08, 0.06])
    b = write_grid(tmp_path / "b", "gaussian", [0.07, 0.10, 0.09], epochs=200)
    return a, b


def test_paired_difference_and_its_t_interval_are_the_known_ones(grids, tmp_path, capsys):
    a, b = grids
    out = tmp_path / "cmp.md"
    assert compare.main([f"A={a}:gaussian", f"B={b}:gaussian", "metrics=r_precision,attr_coarse", f"out={out}"]) == 0
    text = out.read_text()
    # differences 0.02, 0.02, 0.03: mean 0.02333, sd 0.005774, t_{0.975,2} = 4.3027 -> half width 0.01434
    row = next(line for line in text.splitlines() if line.startswith("| r_precision"))
    assert "0.050 / 0.080 / 0.060" in row and "0.070 / 0.100 / 0.090" in row
    assert "**+0.023**" in row and "[+0.009, +0.038]" in row
    coarse = next(line for line in text.splitlines() if line.startswith("| attr_coarse"))
    assert "**" not in coarse  # no difference: never bold
    assert "- data.text_encoder_options.epochs: 100 -> 200" in text
    assert "run_dir" not in text.split("differ (A -> B):")[1]
    assert f"wrote {out}" in capsys.readouterr().out


def test_a_different_judge_is_refused(tmp_path, capsys):
    a = write_grid(tmp_path / "a", "gaussian", [0.05, 0.08])
    b = write_grid(tmp_path / "b", "gaussian", [0.07, 0.10], evaluator="another-judge")
    assert compare.main([f"A={a}:gaussian", f"B={b}:gaussian", "metrics=r_precision"]) == 2
    err = capsys.readouterr().err
    assert "different evaluators" in err and "another-judge" in err and EVALUATOR in err


@pytest.mark.parametrize("spec, words", [("{a}:mixture", ["no variant 'mixture'", "it has: gaussian"]),
                                         ("{a}/nowhere:gaussian", ["does not exist"]),
                                         ("{a}", ["expected DIR:VARIANT"])])
def test_a_bad_side_is_named(grids, capsys, spec, words):
    a, b = grids
    assert compare.main([f"A={spec.format(a=a)}", f"B={b}:gaussian"]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


def test_unknown_metric_and_no_common_seed_are_refused(tmp_path, capsys):
    a = write_grid(tmp_path / "a", "gaussian", [0.05, 0.08])
    b = write_grid(tmp_path / "b", "gaussian", [0.07, 0.10])
    assert compare.main([f"A={a}:gaussian", f"B={b}:gaussian", "metrics=nope"]) == 2
    assert "metrics='nope'" in capsys.readouterr().err
    c = write_grid(tmp_path / "c", "gaussian", [0.07, 0.10], status="failed")
    assert compare.main([f"A={a}:gaussian", f"B={c}:gaussian"]) == 2
    assert "no seed that both ran" in capsys.readouterr().err
    assert compare.main([f"A={a}:gaussian"]) == 2


def test_an_empty_metric_list_or_a_folder_as_out_is_refused_before_anything_is_written(grids, tmp_path, capsys):
    a, b = grids
    assert compare.main([f"A={a}:gaussian", f"B={b}:gaussian", "metrics="]) == 2
    assert "metrics='': no metric named" in capsys.readouterr().err
    assert compare.main([f"A={a}:gaussian", f"B={b}:gaussian", f"out={tmp_path}"]) == 2
    captured = capsys.readouterr()
    assert f"out={tmp_path}: is a folder" in captured.err and captured.out == ""
    assert compare.main(["--help"]) == 0 and "paired" in capsys.readouterr().out.lower()
