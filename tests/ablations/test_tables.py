"""Which columns a table shows: required ones always, optional ones only when some run measured them."""

import pandas as pd

from ablations.tables import aggregate, to_markdown, with_real_row


def _runs(metrics: dict[str, float]) -> pd.DataFrame:
    rows = [{"variant": v, "seed": s, "status": "ok", "reason": None, **metrics} for v in ("a", "b") for s in (0, 1)]
    return pd.DataFrame(rows)


def _header(frame: pd.DataFrame) -> str:
    md = to_markdown(with_real_row(aggregate(frame), {}), "caption")
    return next(ln for ln in md.splitlines() if ln.startswith("| Variant"))


def test_a_64px_grid_shows_no_fine_attribute_column_and_a_128px_grid_does():
    # the attributes metric leaves attr_fine out for images smaller than the judge's input (64 px Stage-I)
    base = {"is": 5.0, "fid": 100.0, "r_precision": 0.1, "attr_coarse": 0.4, "diversity": 0.3, "params": 1e5,
            "images_per_s": 100.0}
    assert "Fine attr." not in _header(_runs(base))
    assert "Coarse attr." in _header(_runs(base)) and "R-precision" in _header(_runs(base))
    assert "Fine attr." in _header(_runs({**base, "attr_fine": 0.6}))
    assert "Rank" in _header(_runs(base))  # required: shown as "–" when missing


def test_a_column_scored_by_two_judges_is_named_in_the_caption():
    # a grid resumed after the judge changed (v3 -> v3 + detail reader): its new seeds are scored by another
    # evaluator; their mean with the old seeds' is not one judge's number, and the caption must say so
    from ablations.collect import caption

    v3, both = "ganblocks-evaluator-a-w1", "ganblocks-evaluator-a-w1-d2"
    frame = pd.DataFrame({"variant": ["g", "g", "g"], "seed": [0, 1, 2], "status": ["ok"] * 3,
                          "r_precision": [0.1, 0.1, 0.2], "r_precision:evaluator": [v3, v3, both],
                          "is": [5.0, 5.0, 5.0], "is:evaluator": [v3, v3, v3]})
    text = caption(frame, {"grid": "g", "profile": "cpu"})
    assert "r_precision scored by 2 evaluators" in text and f"{both}: g seed 2" in text
    assert "is scored by" not in text
    same = frame.assign(**{"r_precision:evaluator": [v3] * 3})
    assert "scored by 2 evaluators" not in caption(same, {"grid": "g", "profile": "cpu"})
