"""The grid report: one self-contained HTML page (table, findings, plots, samples, runs), checked by parsing
and, where a Chromium binary exists, by rendering it in headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

from ablations import report
from ablations.report import inline, markdown_html, write_report
from ablations.runner import run_grid
from ganblocks.sheets import compose_sheet

SEAMS = dict(compose_fn="tests.ablations.fakes:compose", train_fn="tests.ablations.fakes:train",
             evaluate_fn="tests.ablations.fakes:evaluate", rank_fn="tests.ablations.fakes:rank")
CAPTIONS = ["a red bird with white wing bars", "a small blue bird"]
FINDINGS = """# Findings

Paired differences over seeds, 95% intervals:

| Comparison | IS diff | 95% CI |
|---|---:|---:|
| gaussian - none | **+0.12** | [0.01, 0.23] |

- `gaussian` beats `none` on IS.
"""
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class Page(HTMLParser):
    """Collects tags with their attributes, ids, and the text under each section."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict]:
        return [a for t, a in self.tags if t == tag]


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory) -> Path:
    """A grid folder from the fake pieces (results.jsonl, tables, runs.csv) plus small PNGs and findings.md."""
    lines: list[str] = []
    out = run_grid("ca_variants", "smoke", 1, tmp_path_factory.mktemp("grid") / "g", None, [], log=lines.append,
                   plots=False, **SEAMS)
    assert (out / "report.html").is_file()  # the collector writes it after the tables, and the runner says where
    assert f"report: {out / 'report.html'}" in "\n".join(lines)
    (out / "plots").mkdir()
    compose_sheet([((), torch.full((1, 3, 20, 30), 90, dtype=torch.uint8))]).save(out / "plots" / "metric_is.png")
    compose_sheet([((), torch.full((1, 3, 20, 20), 30, dtype=torch.uint8))]).save(out / "plots" / "curve_loss_d.png")
    (out / "samples").mkdir()
    rows = [((v, stage), torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8)) for v in ("none", "gaussian") for stage in ("Stage-I", "64px")]
    compose_sheet(rows, CAPTIONS).save(out / "samples" / "seed0.png")
    (out / "samples" / "captions.txt").write_text("".join(f"{i + 1}. {c}\n" for i, c in enumerate(CAPTIONS)))
    (out / "findings.md").write_text(FINDINGS)
    csv = (out / "table.csv").read_text().splitlines()  # a confidence-interval column, as the statistics add
    (out / "table.csv").write_text("\n".join([csv[0] + ",IS ci95 low"] + [r + ",1.234567" for r in csv[1:]]) + "\n")
    write_report(out)
    return out


def test_inline_markdown_escapes_html_and_keeps_emphasis_and_code():
    assert inline("**3.1 ± 0.2** and `a_b` <script>") == "<strong>3.1 ± 0.2</strong> and <code>a_b</code> &lt;script&gt;"
    assert inline("*few seeds*: matching_aware_joint") == "<em>few seeds</em>: matching_aware_joint"
    assert inline("see [the paper](https://arxiv.org/abs/1612.03242)") == "see the paper (https://arxiv.org/abs/1612.03242)"


def test_markdown_pipe_table_lists_and_headings():
    out = markdown_html(FINDINGS)
    assert "<h2>Findings</h2>" in out
    assert '<th>Comparison</th><th class="num">IS diff</th>' in out
    assert '<td>gaussian - none</td><td class="num"><strong>+0.12</strong></td><td class="num">[0.01, 0.23]</td>' in out
    assert "<ul><li><code>gaussian</code> beats <code>none</code> on IS.</li></ul>" in out


def test_report_has_table_caption_findings_runs_and_every_image_embedded(grid_dir):
    text = (grid_dir / "report.html").read_text()
    page = Page(text)
    words = " ".join(page.text)
    md = (grid_dir / "table.md").read_text()
    caption = md.splitlines()[0].replace("**Table.** ", "")
    assert caption in words  # the protocol caption (evaluator, sample counts, seeds)
    for variant in ("none", "gaussian", "mixture"):
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {variant} |"))
        for cell in [c.strip().strip("*") for c in line.strip("|").split("|")]:
            assert cell in words, (variant, cell)  # mean ± std cells as table.md has them
    assert "IS ci95 low" in words and "1.235" in words  # every table.csv column, CI ones included
    assert "Paired differences over seeds" in words and "[0.01, 0.23]" in words  # findings.md
    assert words.count("ok") >= 3 and "runs/gaussian/seed0" in words  # runs.csv statuses
    for caption_text in CAPTIONS:
        assert caption_text in words
    images = page.all("img")
    assert len(images) == 3
    files = {p.name: p.read_bytes() for p in [*(grid_dir / "plots").glob("*.png"), *(grid_dir / "samples").glob("*.png")]}
    for img in images:
        head, _, payload = img["src"].partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(payload) == files[img["alt"]]
    assert [img["alt"] for img in images] == ["metric_is.png", "curve_loss_d.png", "seed0.png"]  # metrics first
    # Self-contained: every link is to an id on the page; nothing is fetched.
    ids = {a["id"] for _, a in page.tags if "id" in a}
    hrefs = [a["href"] for a in page.all("a")]
    assert hrefs and all(h.startswith("#") and h[1:] in ids for h in hrefs)
    assert not page.all("link") and not page.all("script") and not page.all("iframe")
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", text)


def test_cli_writes_the_report_and_names_a_bad_folder(grid_dir, capsys):
    (grid_dir / "report.html").unlink()
    assert report.main([f"out_dir={grid_dir}"]) == 0
    assert (grid_dir / "report.html").is_file() and "report.html" in capsys.readouterr().out
    assert report.main(["out_dir=/no/such/grid"]) == 2
    assert "out_dir='/no/such/grid' is not a folder" in capsys.readouterr().err
    assert report.main([]) == 2 and "usage: python -m ablations.report out_dir=DIR" in capsys.readouterr().err
    run_folder = next(grid_dir.glob("runs/*/seed0"))  # a folder, but not a grid's: refused, nothing written
    assert report.main([f"out_dir={run_folder}"]) == 2
    assert "neither results.jsonl nor launch.json" in capsys.readouterr().err
    assert not (run_folder / "report.html").exists()


CHECK = """<script>
window.addEventListener('load', () => {
  const ids = new Set([...document.querySelectorAll('[id]')].map(e => e.id));
  const imgs = [...document.images].map(i => ({alt: i.alt, data: i.src.startsWith('data:image/png;base64,'),
                                               ok: i.complete && i.naturalWidth > 0, width: i.naturalWidth}));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  const broken = links.filter(h => !(h.startsWith('#') && ids.has(h.slice(1))));
  const tables = [...document.querySelectorAll('#table table')].map(t => t.rows.length);
  const pre = document.createElement('pre');
  pre.id = 'check';
  pre.textContent = JSON.stringify({imgs, links, broken, tables, resources: performance.getEntriesByType('resource').length});
  document.body.appendChild(pre);
});
</script>"""


def _browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _chromium(binary: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HOME": profile})


@pytest.mark.skipif(_browser() is None, reason=f"no Chromium binary on PATH (looked for {', '.join(BROWSERS)}); "
                    "install one (Debian: apt-get install chromium) to render the report in a headless browser")
def test_report_renders_in_headless_chromium(grid_dir, tmp_path):
    binary = _browser()
    page = tmp_path / "checked.html"
    page.write_text((grid_dir / "report.html").read_text().replace("</body>", CHECK + "\n</body>"))
    dom = _chromium(binary, "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="check">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"no check result in the rendered DOM; chromium said: {dom.stderr[-2000:]}"
    check = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(check["imgs"]) == 3 and all(i["data"] and i["ok"] for i in check["imgs"]), check["imgs"]
    assert check["links"] and check["broken"] == []
    assert check["tables"] and check["tables"][0] == 1 + 3 + 1  # header, one row per variant, the real row
    assert check["resources"] == 0  # nothing fetched: every image is inline
    shot = tmp_path / "report.png"
    _chromium(binary, f"--screenshot={shot}", "--window-size=1280,1600", (grid_dir / "report.html").as_uri())
    from PIL import Image

    pixels = Image.open(shot).convert("L")
    assert pixels.size == (1280, 1600) and pixels.getextrema()[0] < 100  # text and tables were painted
