"""No import cycles between the modules (or the subpackages) of ganblocks/, experiments/ and ablations/.

Read from the source (the AST), not by importing: every `import` and `from ... import` counts, at module
level and inside functions (a function-level import only hides a cycle until that function runs); imports
under `if TYPE_CHECKING:` are skipped (they never run). Two graphs are checked:
- modules: `ablations.runner` -> `ablations.collect` -> `ablations.runner` is a cycle;
- packages: `ganblocks.<sub>` (all its modules together), `ganblocks.<module>`, `experiments`, `ablations`:
  a module of ganblocks.metrics importing ganblocks.evaluation while one of ganblocks.evaluation imports
  ganblocks.metrics is a cycle, even when no two single modules form one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ganblocks", "experiments", "ablations")

# Cycles tolerated for now; each entry must still exist, so that it is removed here as soon as it is broken.
# None today: the loop rewrite broke loop <-> graphs (graphs receives the step it captures as an argument).
KNOWN_MODULE_CYCLES: set[frozenset[str]] = set()


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package __init__) for every .py under PACKAGES."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_init = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_init: bool) -> list[str]:
    """Dotted names imported anywhere in `tree` (a `from a import b` gives `a.b`), TYPE_CHECKING blocks left out."""
    names: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this module is in
                package = module.split(".") if is_init else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            names.extend(f"{base}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return names


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name resolves to the longest project module it starts with)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {}
    for module, (path, is_init) in modules.items():
        targets = set()
        for name in _imported_names(ast.parse(path.read_text(), str(path)), module, is_init):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def package_of(module: str) -> str:
    """`ganblocks.metrics.base` -> `ganblocks.metrics`; `ganblocks.io` -> itself; `ablations.runner` -> `ablations`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "ganblocks" and len(parts) > 1 else parts[0]


def package_graph(graph: dict[str, set[str]]) -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    """The graph between packages, and for each edge the module imports behind it ("a -> b")."""
    edges: dict[str, set[str]] = {}
    why: dict[tuple[str, str], list[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            a, b = package_of(module), package_of(target)
            if a != b and "ganblocks" not in (a, b):  # ganblocks/__init__ imports every subpackage by design
                edges.setdefault(a, set()).add(b)
                why.setdefault((a, b), []).append(f"{module} -> {target}")
    return edges, why


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (each one holds at least one cycle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]], why: dict | None = None) -> str:
    inside = set(component)
    lines = [f"  {a} -> {b}" + (f"  ({'; '.join(why[(a, b)][:3])})" if why else "")
             for a in component for b in sorted(graph.get(a, ())) if b in inside]
    return f"cycle among {', '.join(component)}:\n" + "\n".join(lines)


def test_the_checker_sees_module_level_function_level_and_package_cycles(tmp_path):
    """A known answer: a cycle through a function-level import, one between packages, none through TYPE_CHECKING."""
    files = {
        "ganblocks/__init__.py": "from ganblocks import a, b\n",
        "ganblocks/a/__init__.py": "from ganblocks.a import x, y\n",
        "ganblocks/a/x.py": "def f():\n    from ganblocks.a.y import g\n",
        "ganblocks/a/y.py": "from .x import f\nfrom ganblocks.b.z import h\n",
        "ganblocks/b/__init__.py": "",
        "ganblocks/b/z.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ganblocks.a import x\n"
                            "import ganblocks.b.w\n",
        "ganblocks/b/w.py": "import torch\nfrom ganblocks.a.q import f as h\n",
        "ganblocks/a/q.py": "def f():\n    pass\n",
        "experiments/__init__.py": "",
        "ablations/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["ganblocks.a.x"] == {"ganblocks.a.y"} and graph["ganblocks.a.y"] == {"ganblocks.a.x", "ganblocks.b.z"}
    assert graph["ganblocks.b.z"] == {"ganblocks.b.w"}  # the TYPE_CHECKING import does not count
    assert cycles(graph) == [["ganblocks.a.x", "ganblocks.a.y"]]
    packages, why = package_graph(graph)
    assert cycles(packages) == [["ganblocks.a", "ganblocks.b"]]
    assert why[("ganblocks.b", "ganblocks.a")] == ["ganblocks.b.w -> ganblocks.a.q"]


def test_no_import_cycle_between_modules():
    graph = import_graph()
    found = {frozenset(c): c for c in cycles(graph)}
    new = [c for key, c in found.items() if key not in KNOWN_MODULE_CYCLES]
    assert not new, "import cycles between modules (module- or function-level imports):\n" + "\n".join(
        _describe(c, graph) for c in new)
    gone = [sorted(k) for k in KNOWN_MODULE_CYCLES if k not in found]
    assert not gone, f"these known cycles are gone: remove them from KNOWN_MODULE_CYCLES: {gone}"


def test_no_import_cycle_between_packages():
    packages, why = package_graph(import_graph())
    found = cycles(packages)
    assert not found, "import cycles between packages:\n" + "\n".join(_describe(c, packages, why) for c in found)
