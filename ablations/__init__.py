"""Ablation grids: `python -m ablations.run grid=NAME` trains and evaluates every variant x seed of a grid
(ablations/conf/grid/NAME.yaml) and `python -m ablations.collect out_dir=DIR` builds the tables, plots and
sample sheets from DIR/results.jsonl. See docs/ablations.md."""
