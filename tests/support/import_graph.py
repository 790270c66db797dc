"""The real import graph between the `connector` packages, its layer rules, and its table in the docs.

    python tests/support/import_graph.py           # print the graph as docs/ARCHITECTURE.md shows it
    python tests/support/import_graph.py --write   # rewrite that section of docs/ARCHITECTURE.md

A "package" is a sub-package (`connector/sync/`) or a top-level module (`connector/config.py`); the
package root (`connector/__init__.py`) is `connector`. Imports inside functions count too (marked
"lazy" when every import of that edge is inside a function).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "connector"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
START, END = "<!-- import-graph:start -->", "<!-- import-graph:end -->"

ISLAND = -1  # the emulator: imports nothing of the client but `connector.constants`
FACADE = -2  # the package root: `__version__`, and `Portal` imported lazily; any module may read it
LAYERS: dict[str, int] = {
    "constants": 0, "errors": 0, "times": 0,
    "rest": 1, "templates": 1,
    "config": 2, "crm": 2,
    "store": 3,
    "deploy": 4, "sync": 4, "reports": 4,
    "doctor": 5,
    "api": 6,  # Portal: the one application layer the CLI and the scheduler call
    "scheduler": 7, "demo": 7,
    "cli": 8,
    "__main__": 9,
    "connector": FACADE,
    "emulator": ISLAND,
}
# Same-layer imports that exist today (none since templates sit below crm).
SAME_LAYER_ALLOWED: set[tuple[str, str]] = set()

Graph = dict[str, dict[str, bool]]  # package -> {imported package: True if any import is at module level}


def package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if len(parts) > 1:
        return parts[0]
    return "connector" if parts[0] == "__init__" else parts[0]


def _imports(tree: ast.Module, module: str) -> Iterator[tuple[str, bool]]:
    """(imported module, at module level?) for every import in a file."""
    lazy: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lazy.update(id(inner) for inner in ast.walk(node) if inner is not node)
    for node in ast.walk(tree):
        eager = id(node) not in lazy
        if isinstance(node, ast.Import):
            yield from ((alias.name, eager) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                yield ".".join([*base, node.module] if node.module else base), eager
            elif node.module == "connector":  # `from connector import times`: a module of the package
                for alias in node.names:
                    is_module = (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").is_file()
                    yield (f"connector.{alias.name}" if is_module else "connector"), eager
            else:
                yield node.module or "", eager


def import_graph() -> Graph:
    """Edges between connector packages, computed from the source."""
    graph: Graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = package_of(path)
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        edges = graph.setdefault(source, {})
        for name, eager in _imports(ast.parse(path.read_text(encoding="utf-8")), module):
            parts = name.split(".")
            if parts[0] != "connector":
                continue
            target = parts[1] if len(parts) > 1 else "connector"
            if target != source:
                edges[target] = edges.get(target, False) or eager
    return graph


def violations(graph: Graph) -> list[str]:
    """Broken layer rules: an import upwards or sideways, an emulator importing the client, an
    unknown package (give it a layer in LAYERS and in docs/ARCHITECTURE.md)."""
    found = [f"package {p!r} has no layer in tests/support/import_graph.py LAYERS"
             for p in sorted(graph) if p not in LAYERS]
    for source, edges in sorted(graph.items()):
        for target in sorted(edges):
            if source not in LAYERS or target not in LAYERS or FACADE in (LAYERS[source], LAYERS[target]):
                continue
            if LAYERS[source] == ISLAND:
                if target != "constants":
                    found.append(f"the emulator imports connector.{target} (only constants is allowed)")
            elif LAYERS[target] == ISLAND:
                if LAYERS[source] < LAYERS["doctor"]:  # doctor, api and above are applications
                    found.append(f"{source} (a library layer) imports the emulator")
            elif LAYERS[target] > LAYERS[source] or (
                    LAYERS[target] == LAYERS[source] and (source, target) not in SAME_LAYER_ALLOWED):
                found.append(f"{source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[target]})")
    return found


def render(graph: Graph) -> str:
    """The graph as a Markdown table, packages from the top layer down."""
    names = {ISLAND: "island", FACADE: "root"}
    order = sorted(graph, key=lambda p: (-LAYERS.get(p, 99) if LAYERS.get(p, 0) >= 0 else 99 + LAYERS[p], p))
    rows = ["| package | layer | imports (connector packages; *lazy* = only inside functions) |",
            "|---|---|---|"]
    for source in order:
        edges = graph[source]
        shown = ", ".join(t if edges[t] else f"{t} *lazy*" for t in sorted(edges)) or "—"
        layer = LAYERS.get(source)
        rows.append(f"| `{source}` | {names.get(layer, layer)} | {shown} |")
    return "\n".join(rows)


def doc_section(text: str) -> str:
    """The generated part of docs/ARCHITECTURE.md, between the markers."""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write_doc(graph: Graph) -> None:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{START}\n{render(graph)}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    current = import_graph()
    if "--write" in sys.argv[1:]:
        write_doc(current)
    else:
        print(render(current))
    for problem in violations(current):
        print(f"layer rule broken: {problem}", file=sys.stderr)
