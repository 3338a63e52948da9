"""`--help` of the command-line entry points: what the command does, its options with defaults, examples.

The options are read from the YAML files that define them (experiments/conf), comments included, so the
help cannot drift from the defaults a run really gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

CONF_DIR = Path(__file__).resolve().parent / "conf"
HELP_FLAGS = ("-h", "--help")


def wants_help(argv: Sequence[str]) -> bool:
    """True when the arguments ask for help (`-h` or `--help` anywhere)."""
    return any(a in HELP_FLAGS for a in argv)


def yaml_options(path: Path, skip: Sequence[str] = ("defaults", "hydra"), prefix: str = "") -> str:
    """The YAML file's keys with their defaults and comments, indented; top-level blocks in `skip` left out.

    `prefix` goes before each top-level key (`metrics.` for the metrics settings).
    """
    lines, skipping = [], False
    for line in path.read_text().splitlines():
        top = bool(line) and not line[0].isspace() and not line.startswith("#")
        if top:
            skipping = line.split(":", 1)[0] in skip
        if skipping or not line.strip() or line.startswith("#"):
            continue  # skipped blocks, blank lines, the file's own comments
        lines.append("  " + (prefix + line if top else " " * len(prefix) + line))
    return "\n".join(lines)


def config_groups(conf_dir: Path = CONF_DIR) -> str:
    """One line per config group: `group: option (default), option, ...`."""
    import yaml

    defaults = {}
    for entry in yaml.safe_load((conf_dir / "config.yaml").read_text()).get("defaults", []):
        if isinstance(entry, dict):
            defaults.update(entry)
    lines = []
    for group in sorted(p for p in conf_dir.iterdir() if p.is_dir()):
        options = sorted(p.stem for p in group.glob("*.yaml"))
        marked = [f"{o} (default)" if o == defaults.get(group.name) else o for o in options]
        lines.append(f"  {group.name}: " + ", ".join(marked))
    return "\n".join(lines)


def render(doc: str, sections: Sequence[tuple[str, str]]) -> str:
    """The module docstring, then each (title, body) section."""
    parts = [doc.strip()]
    for title, body in sections:
        parts.append(f"{title}:\n{body.rstrip()}")
    return "\n\n".join(parts) + "\n"
