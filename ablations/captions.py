"""The caption of a grid's table: what was run (grid, profile, recipe from the runs' configs, seeds), how it was
scored (evaluator, sample counts, the real row, chance levels) and by which code; `ablations.collect` writes it
above table.md and table.tex."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ablations import tables


SMOKE_NOTE = ("Smoke profile: this table checks that the pipeline runs end to end (tiny models, a few dozen "
              "steps); it carries no result.")


def references(frame: pd.DataFrame) -> str:
    """The caption's sentences on the `real` row and on each text metric's chance level."""
    real = tables.real_values(frame)
    chance = tables.chance_values(frame)
    text = ("Row 'real (test images)': real test images through the same protocol (IS, R-precision, attributes, "
            "pixelation of one real half with own captions; FID and KID of that half against the other; diversity "
            "within a class). " if real else "No real row: the evaluation gave no real reference. ")
    if chance:
        text += "Chance: " + ", ".join(f"{h} {v:.3f}" for h, v in chance.items()) + ". "
    return text


def recipe(frame: pd.DataFrame, out_dir: str | Path | None) -> str:
    """The profile's choices, read from the runs' resolved config.yaml: text encoder (and its options), widths, N_g/N_z,
    batch, lr (and D's own lr when `train.lr_d` differs), steps per stage, KL weight, preset, G's regularisers
    (`loss.regularisers`, with their `loss.regulariser_options` weight), and the D head
    when all runs share it ('' when no run folder has a config)."""
    if out_dir is None or "run_dir" not in frame:
        return ""
    found, heads = set(), set()
    for run_dir in frame["run_dir"].dropna():
        path = Path(out_dir) / str(run_dir) / "config.yaml"
        if not path.is_file():
            continue
        try:
            cfg = OmegaConf.load(path)
        except (OSError, yaml.YAMLError):  # a corrupt config.yaml: the caption goes without that run
            continue
        try:
            m, t = cfg.model, cfg.train
            f, n = float(t.step_factor), len(cfg.pipeline.stages)  # steps as training/build.py counts them
            steps = (f"{max(1, round(f * t.max_steps))} steps" if t.max_steps is not None else f"{f * t.epochs:g} epochs")
            shape = f" x {n} stage{'s' * (n > 1)} ({cfg.pipeline.name}" + (f", train.step_factor {f:g})" if f != 1 else ")")
            lr_d = t.get("lr_d")
            lr = f"lr {t.lr:g}" + ("" if lr_d is None or lr_d == t.lr else f" (D {lr_d:g}, TTUR)")
            options = cfg.loss.get("regulariser_options") or {}
            regs = "".join(f", G regulariser {name}" + (f" (weight {options[name].weight:g})" if "weight" in
                                                        options.get(name, {}) else "")
                           for name in cfg.loss.get("regularisers") or [])
            enc = cfg.data.get("text_encoder_options") or {}  # e.g. the rnn encoder's pre-training epochs
            enc = "".join(f" ({', '.join(f'{k} {v}' for k, v in enc.items())})" if enc else "")
            found.add(f"text encoder {cfg.data.text_encoder}{enc}, gf/df {m.gf_dim}/{m.df_dim}, N_g {m.condition_dim}, "
                      f"N_z {m.noise_dim}, batch {t.batch_size}, {lr}, {steps} per stage{shape}, KL weight "
                      f"{cfg.loss.kl_weight:g} ({m.preset} preset){regs}, data {cfg.data.size}")
            heads.add(str(m.d_head))
        except OmegaConfBaseException:  # not a ganblocks training config (e.g. a test's fake run)
            continue
    if not found:
        return ""
    # The D head is named when every run shares it (a grid that varies it names it per row already).
    head = f"; D head {heads.pop()}" if len(heads) == 1 else ""
    return "Recipe: " + "; ".join(sorted(found)) + head + ". "


def caption(frame: pd.DataFrame, manifest: dict, out_dir: str | Path | None = None) -> str:
    """Names the grid, profile, the profile's recipe (from the runs' configs under out_dir), seeds,
    evaluator(s) (and `tables.mixed_evaluators`' warning when a metric's runs were scored by different ones), sample counts
    per metric, the real row, chance levels and the source commit; a smoke-profile table says first that it checks
    the pipeline and carries no result."""

    def uniq(column: str) -> str:
        vals = sorted({str(v) for v in frame[column].dropna()}, key=lambda v: (len(v), v)) if column in frame else []
        return "/".join(vals)

    evaluators = sorted({str(v) for c in frame.columns if c.endswith(":evaluator") for v in frame[c].dropna()})
    counts = []
    mixed = tables.mixed_evaluators(frame)
    for col in tables.COLUMNS:
        key = tables.column_key(col, frame)
        if key is None or f"{key}:n_samples" not in frame:
            continue
        text = f"{col.header} {uniq(f'{key}:n_samples')}"
        if col.header == "IS" and uniq(f"{key}:splits"):
            text += f" ({uniq(f'{key}:splits')} splits)"
        counts.append(text)
    seeds = sorted({int(s) for s in frame["seed"]}) if not frame.empty else []
    profile = ", ".join(sorted({str(p) for p in frame.get("profile", pd.Series(dtype=str)).dropna()})) or manifest.get("profile", "?")
    shas = ", ".join(sorted({str(s) for s in frame.get("git_sha", pd.Series(dtype=str)).dropna()})) or "unknown"
    return (
        (SMOKE_NOTE + " " if "smoke" in profile.split(", ") else "")
        + f"Ablation grid {manifest.get('grid', '?')} (profile {profile}): mean ± std over seeds {seeds} "
        f"(std needs 2+ finished seeds). {recipe(frame, out_dir)}Evaluator: {', '.join(evaluators) or 'n/a'}. {mixed}Generated images per "
        f"metric: {', '.join(counts) or 'n/a'}. {references(frame)}Rank: cross-run rank proxy per seed (mean "
        f"per-caption rank of text agreement and realism judged by the evaluator). ↑/↓: higher/lower is better. "
        f"Code {shas}.{rescored(frame)}"
    )


def rescored(frame: pd.DataFrame) -> str:
    """' Scored again by ablations.reevaluate at code X (n of N runs).' when any run's latest attempt was
    re-evaluated (its metrics then come from code X, its training from the `Code` above); else ''."""
    if "reevaluated_sha" not in frame or frame["reevaluated_sha"].isna().all():
        return ""
    shas = ", ".join(sorted({str(s) for s in frame["reevaluated_sha"].dropna()}))
    return (f" Scored again by ablations.reevaluate at code {shas} ({int(frame['reevaluated_sha'].notna().sum())} "
            f"of {len(frame)} runs).")
