"""`python -m ganblocks list`: every registered kind and name with the first sentence of its docstring.

One line per component: the sentence is printed whole (joined from however many docstring lines it spans),
never cut at a line of the source.
"""

from __future__ import annotations

import argparse
import sys

import ganblocks  # noqa: F401  (importing the package registers every component)
from ganblocks.registry import REGISTRIES


def list_components(kind: str | None = None) -> str:
    lines: list[str] = []
    for k, reg in REGISTRIES.items():
        if kind and k != kind:
            continue
        lines.append(f"{k}:")
        width = max((len(n) for n in reg.names()), default=0)
        for name in reg.names():
            lines.append(f"  {name:<{width}}  {reg.summary(name)}")
        if not len(reg):
            lines.append("  (none registered)")
    return "\n".join(lines)


EXAMPLES = """examples:
  python -m ganblocks list               every kind and name
  python -m ganblocks list upsample      one kind: the names model.upsample= accepts
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganblocks", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="list registered components")
    p_list.add_argument("kind", nargs="?", choices=list(REGISTRIES), help="only this kind")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(list_components(args.kind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
