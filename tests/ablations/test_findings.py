"""Findings and significance marks from synthetic results.jsonl files with known answers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from ablations.collect import collect, runs_frame
from ablations.findings import HOLDS, CONTRADICTED, INCONCLUSIVE, compare, judge, marks
from ablations.grids import Expectation, GridError, load_grid, list_grids, parse_grid
from ganblocks.io import append_jsonl

BASE_IS = [0.40, 0.50, 0.45]
BASE_FID = [100.0, 110.0, 105.0]
# variant -> per-seed differences to the baseline (is, fid)
EFFECTS = {
    "up": ([0.10, 0.11, 0.09], [-10.0, -11.0, -9.0]),      # clearly higher IS, clearly lower (better) FID
    "down": ([-0.10, -0.12, -0.08], [10.0, 12.0, 8.0]),    # clearly lower IS, clearly higher (worse) FID
    "flat": ([0.30, -0.10, 0.20], [0.0, 1.0, -1.0]),       # the best mean IS, but the interval holds 0
}
EXPECT = [
    Expectation("up", "is", "higher", "claim A"),
    Expectation("down", "is", "higher", "claim A"),
    Expectation("flat", "is", "higher", "claim A"),
    Expectation("down", "is", "lower", "claim A"),
    Expectation("up", "fid", "lower", "claim B"),
]


def _row(variant: str, index: int, seed: int, metrics: dict[str, float]) -> list[dict]:
    attempt = uuid.uuid4().hex
    return [{"grid": "synthetic", "variant": variant, "variant_index": index, "seed": seed, "profile": "small",
             "status": "ok", "reason": None, "attempt": attempt, "n_rows": len(metrics), "run_dir": f"runs/{variant}/seed{seed}",
             "metric": name, "value": value, "n_samples": 100, "evaluator": "synthetic"} for name, value in metrics.items()]


def write_grid(out: Path, seeds: int = 3, effects=EFFECTS) -> Path:
    """results.jsonl and launch.json of a grid `none` (baseline) + `effects` over `seeds` seeds."""
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(seeds):
        for row in _row("none", 0, seed, {"is": BASE_IS[seed], "fid": BASE_FID[seed]}):
            append_jsonl(out / "results.jsonl", row)
        for i, (variant, (d_is, d_fid)) in enumerate(effects.items(), start=1):
            metrics = {"is": BASE_IS[seed] + d_is[seed], "fid": BASE_FID[seed] + d_fid[seed]}
            for row in _row(variant, i, seed, metrics):
                append_jsonl(out / "results.jsonl", row)
    manifest = {"grid": "synthetic", "profile": "small", "variants": ["none", *effects], "baseline": "none",
                "claim": "claim A", "expect": [e.__dict__ for e in EXPECT]}
    (out / "launch.json").write_text(json.dumps(manifest))
    return out


def no_ranks(run_dirs):
    return {v: {"value": 1.0} for v in run_dirs}


def build(out: Path) -> dict[str, Path]:
    return collect(out, rank_fn=no_ranks, plots=False, samples=False, log=lambda s: None)


def test_clear_effects_hold_or_are_contradicted_and_noise_is_inconclusive(tmp_path):
    frame = runs_frame(write_grid(tmp_path / "g"))
    verdicts = [(f.expectation.variant, f.expectation.metric, f.expectation.direction, f.verdict)
                for f in judge(frame, "none", EXPECT)]
    assert verdicts == [
        ("up", "is", "higher", HOLDS),
        ("down", "is", "higher", CONTRADICTED),
        ("flat", "is", "higher", INCONCLUSIVE),
        ("down", "is", "lower", HOLDS),
        ("up", "fid", "lower", HOLDS),
    ]
    up = judge(frame, "none", EXPECT[:1])[0].comparison
    assert up.seeds == (0, 1, 2) and up.interval.mean == pytest.approx(0.10)
    # sd of (0.10, 0.11, 0.09) is 0.01: half width 4.302653 * 0.01 / sqrt(3)
    assert up.interval.hi - up.interval.mean == pytest.approx(4.302653 * 0.01 / 3**0.5, abs=1e-6)


def test_findings_md_is_generated_with_the_numbers_and_claims(tmp_path):
    out = write_grid(tmp_path / "g")
    text = build(out)["findings.md"].read_text()
    lines = {ln.split("|")[1].strip(): ln for ln in text.splitlines() if ln.startswith("| ") and " vs " in ln}
    assert "**holds**" in lines["up vs none: is higher"]
    assert "**contradicted**" in lines["down vs none: is higher"]
    assert "**inconclusive**" in lines["flat vs none: is higher"]
    assert "+0.100" in lines["up vs none: is higher"] and "3 (0, 1, 2)" in lines["up vs none: is higher"]
    assert "Claim: claim A" in text and "fid: claim B" in text and "from results.jsonl" in text


def test_bold_only_where_the_difference_is_significant_in_the_better_direction(tmp_path):
    out = write_grid(tmp_path / "g")
    paths = build(out)
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]]
            for ln in paths["table.md"].read_text().splitlines() if ln.startswith("| ") and "---" not in ln}
    head = rows.pop("Variant")
    fid, is_ = head.index("FID ↓"), head.index("IS ↑")
    assert rows["up"][is_].startswith("**") and rows["up"][fid].startswith("**")  # lower FID is better: bold
    assert rows["down"][is_].startswith("*") and not rows["down"][is_].startswith("**")  # significantly worse: italics
    assert rows["down"][fid].startswith("*") and not rows["down"][fid].startswith("**")
    assert "*" not in rows["flat"][is_]  # best mean IS, but not significant: plain
    assert not any("*" in cell for cell in rows["none"])  # the baseline is never marked
    diff = paths["table_diff.md"].read_text()
    assert "**+0.100 [+0.075, +0.125]**" in diff and "Seed pairs" in diff
    csv = paths["table_diff.csv"].read_text().splitlines()
    assert "up,none,is,IS,higher,3,0 1 2,0.1," in "\n".join(csv)


def test_diversity_has_no_better_direction_and_is_never_bold(tmp_path):
    """Real images score the lowest diversity, so neither more nor less is "better": no arrow, no marks,
    even for a clear, significant difference (the findings can still test a grid's expected direction)."""
    out = tmp_path / "g"
    for seed in range(3):
        for variant, index, value in (("none", 0, 0.40 + seed / 100), ("up", 1, 0.60 + seed / 100)):
            for row in _row(variant, index, seed, {"diversity": value}):
                append_jsonl(out / "results.jsonl", row)
    (out / "launch.json").write_text(json.dumps({"grid": "synthetic", "profile": "small", "variants": ["none", "up"],
                                                 "baseline": "none", "claim": "c", "expect": []}))
    lines = [ln for ln in build(out)["table.md"].read_text().splitlines() if ln.startswith("| ") and "---" not in ln]
    head = [c.strip() for c in lines[0].split("|")[2:-1]]
    assert "Diversity" in head and not any(h.startswith("Diversity ") for h in head)
    up = next(ln for ln in lines if ln.split("|")[1].strip() == "up")
    assert "*" not in up.split("|")[2 + head.index("Diversity")]


def test_one_seed_marks_nothing_and_decides_nothing(tmp_path):
    out = write_grid(tmp_path / "g", seeds=1)
    paths = build(out)
    frame = runs_frame(out)
    assert marks(compare(frame, "none")) == {}
    assert {f.verdict for f in judge(frame, "none", EXPECT)} == {INCONCLUSIVE}
    assert "1 seed pair: no spread, no interval" in paths["findings.md"].read_text()
    table = paths["table.md"].read_text()
    assert table.count("**") == 2 and "Fewer than 2 seeds per variant" in table  # only "**Table.**"


def test_unpaired_seeds_are_left_out(tmp_path):
    out = write_grid(tmp_path / "g")
    frame = runs_frame(out)
    frame.loc[(frame["variant"] == "none") & (frame["seed"] == 2), "status"] = "failed"
    up = judge(frame, "none", EXPECT[:1])[0].comparison
    assert up.seeds == (0, 1) and up.interval.n == 2 and up.interval.mean == pytest.approx(0.105)


def test_collect_regenerates_findings_when_results_change(tmp_path):
    out = write_grid(tmp_path / "g", seeds=1)
    assert "**inconclusive**" in build(out)["findings.md"].read_text().split("up vs none: is higher")[1][:30]
    write_grid(out, seeds=3)  # more seeds landed (the new attempts of seed 0 replace the old ones)
    assert "**holds**" in build(out)["findings.md"].read_text().split("up vs none: is higher")[1][:30]


GRID = {"name": "g", "baseline": "a", "claim": "a claim (Paper 2017, Table 2)",
        "variants": [{"label": "a", "overrides": []}, {"label": "b", "overrides": []}]}


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"expect": [{"variant": "bb", "metric": "is", "direction": "higher"}]}, "expect\\[0\\]: unknown variant 'bb'; variants: a, b"),
        ({"expect": [{"variant": "b", "metric": "sharpness", "direction": "higher"}]}, "unknown metric 'sharpness'; accepted: is, .*pixelation"),
        ({"expect": [{"variant": "b", "metric": "is", "direction": "up"}]}, "direction 'up' must be one of higher, lower"),
        ({"expect": [{"variant": "a", "metric": "is", "direction": "higher"}]}, "is the baseline"),
        ({"expect": [{"variant": "b", "metric": "is"}]}, "must have variant, metric, direction"),
        ({"baseline": "c"}, "baseline 'c' is not a variant; variants: a, b"),
        ({"baseline": None, "expect": [{"variant": "b", "metric": "is", "direction": "higher"}]}, "needs a 'baseline'"),
        ({"claim": None, "expect": [{"variant": "b", "metric": "is", "direction": "higher"}]}, "no claim"),
    ],
)
def test_a_grid_with_a_bad_expectation_is_refused(extra, match):
    with pytest.raises(GridError, match=match):
        parse_grid({**GRID, **extra}, source="g.yaml")


def test_a_good_expectation_parses_with_its_claim():
    grid = parse_grid({**GRID, "expect": [{"variant": "b", "metric": "fid", "direction": "lower"},
                                          {"variant": "b", "metric": "is", "direction": "higher", "claim": "own"}]})
    assert grid.baseline == "a" and grid.expect == (Expectation("b", "fid", "lower", "a claim (Paper 2017, Table 2)"),
                                                   Expectation("b", "is", "higher", "own"))


@pytest.mark.parametrize("name", list_grids())
def test_every_shipped_grid_names_a_baseline_and_an_expected_effect(name):
    grid = load_grid(name)
    assert grid.baseline in grid.labels and grid.expect and grid.claim
    assert grid.default_seeds("smoke") == 1 and grid.default_seeds("small") == 3 and grid.default_seeds("cpu") == 3


def test_the_upsampling_grid_tests_the_smoothness_claim():
    grid = load_grid("upsampling")
    assert grid.baseline == "nearest"
    assert {(e.variant, e.metric, e.direction) for e in grid.expect} == {("bilinear", "pixelation", "lower"),
                                                                       ("bicubic", "pixelation", "lower")}


def test_bootstrap_interval_on_request(tmp_path):
    out = write_grid(tmp_path / "g")
    paths = collect(out, rank_fn=no_ranks, plots=False, samples=False, interval="bootstrap", log=lambda s: None)
    assert "percentile bootstrap" in paths["findings.md"].read_text()
    rows = [ln.split(",") for ln in paths["table_diff.csv"].read_text().splitlines()]
    method = rows[0].index("method")
    assert {r[method] for r in rows[1:]} == {"bootstrap"}


def test_without_the_baseline_nothing_is_compared_and_no_stale_difference_table_is_left(tmp_path):
    out = write_grid(tmp_path / "g")
    assert build(out)["table_diff.md"].exists()
    manifest = json.loads((out / "launch.json").read_text())
    (out / "launch.json").write_text(json.dumps({**manifest, "baseline": "gone"}))
    paths = build(out)
    assert "table_diff.md" not in paths and not (out / "table_diff.md").exists()
    assert "No baseline with runs" in paths["findings.md"].read_text()
    assert "**" not in paths["table.md"].read_text().replace("**Table.**", "")


def test_an_interval_that_excludes_zero_never_prints_an_end_as_zero():
    from ablations.findings import format_interval
    from ablations.stats import Interval

    # the upsampling grid's bilinear pixelation: it excludes 0 by 0.003 and once printed as [-0.49, +0.00]
    mean, ci = format_interval(Interval(n=3, mean=-0.246894, lo=-0.490944, hi=-0.00284424))
    assert ci == "[-0.491, -0.003]" and mean == "-0.247"
    assert format_interval(Interval(n=3, mean=-0.25, lo=-0.49, hi=0.01))[1] == "[-0.49, +0.01]"  # contains 0: as before
