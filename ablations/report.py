"""`python -m ablations.report out_dir=DIR`: one self-contained HTML page of a grid, DIR/report.html.

The page shows, from what the grid folder holds: the table (table.md as written, mean ± std with the best
in bold and the protocol caption; every column of table.csv, confidence intervals included, below it),
findings.md when present, the plots (plots/*.png), the sample sheets (samples/*.png, with captions.txt),
and the status of every run (runs.csv). Images are embedded as base64 data: URIs and the style is inline,
so the one file can be mailed or opened offline: it has no external links and loads nothing.
`ablations.collect` (and so `ablations.run`) writes it after the tables, plots and samples.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
import sys
from pathlib import Path

from ganblocks.io import atomic_write_text

REPORT = "report.html"
RUN_COLUMNS = ("variant", "seed", "status", "reason", "params", "images_per_s", "wall_s", "profile", "git_sha", "run_dir")
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
nav a { margin-right: 1em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8em 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.7em; }
th { background: #f4f4f4; }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; }
.caption { color: #444; max-width: 60em; }
.gallery { display: flex; flex-wrap: wrap; gap: 0.5em 1.5em; align-items: flex-start; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.status-ok { color: #176117; } .status-bad { color: #a11; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
details { margin: 0.5em 0 1.5em; }
"""


# ----------------------------------------------------------------------------------------------------------
# Markdown (the subset the collector and the statistics write: headings, paragraphs, lists, pipe tables,
# fenced code, **bold**, *italic*, `code`; links keep their text and show their target as text).
# ----------------------------------------------------------------------------------------------------------
def inline(text: str) -> str:
    """One line of Markdown -> HTML (escaped first, so nothing in the text becomes markup by accident)."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1 (\2)", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_html(header: list[str], rows: list[list[str]], markdown: bool = True, numeric: list[bool] = ()) -> str:
    """An HTML table; cells are Markdown (`markdown`) or plain text; `numeric` columns align right."""
    fmt = inline if markdown else (lambda t: html.escape(t, quote=False))
    cls = lambda i: ' class="num"' if i < len(numeric) and numeric[i] else ""  # noqa: E731
    head = "".join(f"<th{cls(i)}>{fmt(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{fmt(c)}</td>" for i, c in enumerate(r)) + "</tr>\n" for r in rows)
    return f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table></div>'


def markdown_html(text: str) -> str:
    """Markdown (the subset above) -> HTML blocks."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            out.append("<pre>" + html.escape("\n".join(lines[i + 1 : end]), quote=False) + "</pre>")
            i = end + 1
        elif m := re.match(r"(#{1,6})\s+(.*)", line):
            level = min(len(m.group(1)) + 1, 6)  # the page's own title is the only h1
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(_cells(lines[i]))
                i += 1
            rule = lambda r: all(re.fullmatch(r":?-{2,}:?", c) for c in r)  # noqa: E731
            align = next((r for r in block[1:2] if rule(r)), [])
            out.append(table_html(block[0], [r for r in block[1:] if not rule(r)], numeric=[a.endswith(":") for a in align]))
        elif re.match(r"\s*([-*]|\d+\.)\s", line):
            tag = "ol" if re.match(r"\s*\d+\.", line) else "ul"
            items = []
            while i < len(lines) and re.match(r"\s*([-*]|\d+\.)\s", lines[i]):
                items.append(re.sub(r"\s*([-*]|\d+\.)\s+", "", lines[i], count=1))
                i += 1
                while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                    items[-1] += " " + lines[i].strip()
                    i += 1
            out.append(f"<{tag}>" + "".join(f"<li>{inline(t)}</li>" for t in items) + f"</{tag}>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"\s*(\||#|```|[-*]\s|\d+\.\s)", lines[i]):
                para.append(lines[i].strip())
                i += 1
            out.append(f'<p class="caption">{inline(" ".join(para))}</p>' if para[0].startswith("**Table.**")
                       else f"<p>{inline(' '.join(para))}</p>")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------------------
def data_uri(path: Path) -> str:
    """A PNG file as a data: URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure(path: Path, caption: str) -> str:
    return (f'<figure><img src="{data_uri(path)}" alt="{html.escape(path.name)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return (rows[0], rows[1:]) if rows else ([], [])


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _short(cell: str) -> str:
    """A CSV number at 4 significant digits (integers whole); anything else as it is."""
    value = _number(cell)
    return cell if value is None or cell.strip().lstrip("-").isdigit() else f"{value:.4g}"


def table_section(out_dir: Path) -> str:
    parts = []
    if (out_dir / "table.md").is_file():
        parts.append(markdown_html((out_dir / "table.md").read_text()))
    if (out_dir / "table.csv").is_file():
        header, rows = read_csv(out_dir / "table.csv")
        numeric = [any(c.strip() for c in col) and all(_number(c) is not None for c in col if c.strip())
                   for col in zip(*rows)] if rows else []
        numbers = table_html(header, [[_short(c) for c in r] for r in rows], markdown=False, numeric=numeric)
        if parts:
            parts.append(f"<details><summary>Every number of table.csv ({len(header)} columns)</summary>\n{numbers}\n</details>")
        else:
            parts.append(numbers)
    return "\n".join(parts) or "<p>No table yet (table.md / table.csv missing): run <code>python -m ablations.collect</code>.</p>"


def runs_section(out_dir: Path) -> str:
    if not (out_dir / "runs.csv").is_file():
        return "<p>No runs.csv.</p>"
    header, rows = read_csv(out_dir / "runs.csv")
    keep = [header.index(c) for c in RUN_COLUMNS if c in header]
    status = header.index("status") if "status" in header else None
    body = []
    for r in rows:
        cells = []
        for i in keep:
            text = html.escape(_short(r[i]) if i < len(r) else "", quote=False)
            if i == status:
                text = f'<span class="status-{"ok" if r[i] == "ok" else "bad"}">{text}</span>'
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    statuses = [r[status] if status is not None and status < len(r) else "?" for r in rows]
    summary = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
    head = "".join(f"<th>{html.escape(header[i])}</th>" for i in keep)
    return (f"<p>{len(rows)} runs: {html.escape(summary)}.</p>\n"
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def images_section(folder: Path, empty: str) -> str:
    """Every PNG of `folder` (metric plots before curves), side by side where the page is wide enough."""
    paths = sorted(folder.glob("*.png"), key=lambda p: (not p.name.startswith("metric_"), p.name))
    if not paths:
        return f"<p>{html.escape(empty)}</p>"
    return '<div class="gallery">\n' + "\n".join(figure(p, f"{folder.name}/{p.name}") for p in paths) + "\n</div>"


def samples_section(out_dir: Path) -> str:
    text = images_section(out_dir / "samples", "No sample sheets (samples/*.png).")
    captions = out_dir / "samples" / "captions.txt"
    if captions.is_file():
        items = [re.sub(r"^\d+\.\s*", "", ln) for ln in captions.read_text().splitlines() if ln.strip()]
        text = ("<p>Columns, left to right (the same captions and noise for every variant):</p><ol>"
                + "".join(f"<li>{html.escape(c)}</li>" for c in items) + "</ol>\n" + text)
    return text


def build_report(out_dir: str | Path) -> str:
    """The HTML page of the grid folder `out_dir` (see the module docstring)."""
    out_dir = Path(out_dir)
    manifest = json.loads((out_dir / "launch.json").read_text()) if (out_dir / "launch.json").is_file() else {}
    grid = manifest.get("grid") or out_dir.name
    title = f"Ablation grid {grid}" + (f" (profile {manifest['profile']})" if manifest.get("profile") else "")
    sections = [("table", "Table", table_section(out_dir))]
    if (out_dir / "findings.md").is_file():  # its own top heading gives way to the section's
        findings = re.sub(r"\A\s*#\s[^\n]*\n", "", (out_dir / "findings.md").read_text())
        sections.append(("findings", "Findings", markdown_html(findings)))
    sections += [
        ("plots", "Plots", images_section(out_dir / "plots", "No plots (plots/*.png).")),
        ("samples", "Samples", samples_section(out_dir)),
        ("runs", "Runs", runs_section(out_dir)),
    ]
    nav = "".join(f'<a href="#{key}">{name}</a>' for key, name, _ in sections)
    body = "\n".join(f'<section id="{key}">\n<h2>{name}</h2>\n{content}\n</section>' for key, name, content in sections)
    description = f"<p>{html.escape(manifest['description'])}</p>" if manifest.get("description") else ""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{description}\n"
            f"<p>Folder: <code>{html.escape(str(out_dir.resolve()))}</code></p>\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n")


def write_report(out_dir: str | Path) -> Path:
    """Write DIR/report.html atomically; returns its path."""
    path = Path(out_dir) / REPORT
    atomic_write_text(path, build_report(out_dir))
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m ablations.report out_dir=DIR`."""
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m ablations.report out_dir=DIR   (writes DIR/report.html from the grid folder DIR)"
    examples = ("Examples:\n  python -m ablations.report out_dir=ablation_runs/ca_variants-smoke\n"
                "  chromium ablation_runs/ca_variants-smoke/report.html     # or any browser; it loads nothing else")
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__.strip() + "\n\n" + examples + "\n\n" + usage)
        return 0
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    bad = [a for a in argv if "=" not in a] + sorted(set(args) - {"out_dir"})
    if "out_dir" not in args or bad:
        print(usage + (f"; not understood: {bad}" if bad else ""), file=sys.stderr)
        return 2
    if not Path(args["out_dir"]).is_dir():
        print(f"error: out_dir={args['out_dir']!r} is not a folder; give a grid's output folder (ablation_runs/...)", file=sys.stderr)
        return 2
    if not any((Path(args["out_dir"]) / name).is_file() for name in ("results.jsonl", "launch.json")):
        print(f"error: out_dir={args['out_dir']!r} holds neither results.jsonl nor launch.json, so it is not a grid "
              "folder (a run folder is one level of runs/<variant>/seed<k>/ below it); give the out_dir of "
              "`python -m ablations.run grid=...` (ablation_runs/...)", file=sys.stderr)
        return 2
    print(f"report: {write_report(args['out_dir'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
