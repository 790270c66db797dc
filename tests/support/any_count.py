"""Count function signatures that mention `Any`, per package: `python tests/support/any_count.py`."""

from __future__ import annotations

import ast
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "connector"


def _mentions_any(node: ast.AST | None) -> bool:
    if node is None:
        return False
    return any(
        (isinstance(n, ast.Name) and n.id == "Any")
        or (isinstance(n, ast.Attribute) and n.attr == "Any")
        or (isinstance(n, ast.Constant) and isinstance(n.value, str) and "Any" in n.value)
        for n in ast.walk(node)
    )


def _signature_has_any(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = fn.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return _mentions_any(fn.returns) or any(a is not None and _mentions_any(a.annotation) for a in every)


BOUNDARY_NAMES = ("client", "store", "template", "conn", "portal")


def boundary_any(root: Path = ROOT) -> Counter[str]:
    """How often a key boundary parameter (`client`, `store`, ...) is typed `Any`."""
    found: Counter[str] = Counter()
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                    if arg.arg in BOUNDARY_NAMES and _mentions_any(arg.annotation):
                        found[arg.arg] += 1
    return found


def count(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """Map package name to (signatures with Any, all signatures)."""
    with_any: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        package = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                total[package] += 1
                with_any[package] += _signature_has_any(node)
    return {name: (with_any[name], total[name]) for name in sorted(total)}


def main() -> None:
    counts = count()
    for name, (anys, total) in counts.items():
        print(f"{name:<12} {anys:>5} / {total:<5}")
    anys = sum(a for a, _ in counts.values())
    total = sum(t for _, t in counts.values())
    print(f"{'total':<12} {anys:>5} / {total:<5}")
    boundary = boundary_any()
    listed = ", ".join(f"{name}: Any x{times}" for name, times in sorted(boundary.items()))
    print("boundary parameters typed Any:", listed or "none")
    json.dump({"any": anys, "signatures": total, "boundary_any": dict(boundary)}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
