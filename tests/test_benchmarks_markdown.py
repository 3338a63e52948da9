"""The benchmark-JSON-to-Markdown command: one section per group, items/s derived from the median."""

import json

from benchmarks.to_markdown import benchmark_frame, main, to_markdown


def _report():
    def bench(group, name, median, items=None, device="cpu"):
        extra = {"device": device}
        if items:
            extra["items_per_call"] = items
        return {
            "group": group,
            "name": f"{name}[{device}]",
            "params": {"device": device},
            "stats": {"median": median, "mean": median * 1.1, "stddev": 0.001, "rounds": 5},
            "extra_info": extra,
        }

    return {
        "machine_info": {"cpu": {"brand_raw": "Test CPU"}, "python_version": "3.11"},
        "datetime": "2026-11-23",
        "benchmarks": [
            bench("upsample", "test_upsample_nearest", 0.010, items=64),
            bench("upsample", "test_upsample_bicubic", 0.020, items=64),
            bench("train_step", "test_stage1_step", 0.5, items=32),
        ],
    }


def test_items_per_second_from_median():
    frame = benchmark_frame(_report())
    nearest = frame[frame.benchmark == "test_upsample_nearest"].iloc[0]
    assert abs(nearest["items/s"] - 6400) < 1e-6
    assert abs(nearest["median ms"] - 10.0) < 1e-9


def test_markdown_has_a_section_per_group(tmp_path, capsys):
    text = to_markdown(_report())
    assert "### upsample" in text and "### train_step" in text
    assert text.index("### train_step") < text.index("### upsample")
    assert "Test CPU" in text
    path = tmp_path / "b.json"
    path.write_text(json.dumps(_report()))
    assert main([str(path)]) == 0
    assert "test_stage1_step" in capsys.readouterr().out
