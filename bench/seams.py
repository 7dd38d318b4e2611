"""Figures of issue 12: `Any` in annotations (all, and at package seams), the longest functions.

A *seam* annotation is one on a public name (no leading underscore) of a module-level function, a
public method of a public class, or a field of a public class: what another package can call or
read. Run: ``.venv/bin/python bench/seams.py [--top N]``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "osbuildd"


def _has_any(node: ast.AST | None) -> int:
    if node is None:
        return 0
    n = 0
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == "Any":
            n += 1
        elif isinstance(sub, ast.Attribute) and sub.attr == "Any":
            n += 1
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and "Any" in sub.value:
            n += sub.value.count("Any")
    return n


def _bare(node: ast.AST | None) -> int:
    """1 when the annotation is ``Any`` itself (or ``Any | None``): a value of unknown type, where
    ``dict[str, Any]`` is a JSON document whose shape is known to be an object."""
    if node is None:
        return 0
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return 0
    if isinstance(node, ast.BinOp):
        return max(_bare(node.left), _bare(node.right))
    return int(isinstance(node, ast.Name) and node.id == "Any")


def _fn_annotations(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.AST | None]:
    a = fn.args
    args = a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]
    return [x.annotation for x in args] + [fn.returns]


def _public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def measure(root: Path = ROOT) -> dict[str, object]:
    total = seam = bare = bare_seam = 0
    seam_where: dict[str, int] = {}
    lengths: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        rel = str(path.relative_to(root.parent))
        tree = ast.parse(path.read_text(), rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                total += sum(_has_any(x) for x in _fn_annotations(node))
                bare += sum(_bare(x) for x in _fn_annotations(node))
                end = node.end_lineno or node.lineno
                lengths.append((end - node.lineno + 1, f"{rel}:{node.lineno} {node.name}"))
            elif isinstance(node, ast.AnnAssign):
                total += _has_any(node.annotation)
                bare += _bare(node.annotation)
        public_nodes: list[tuple[ast.AST, str]] = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _public(node.name):
                public_nodes.append((node, node.name))
            elif isinstance(node, ast.ClassDef) and _public(node.name):
                for sub in node.body:
                    if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef) and _public(sub.name):
                        public_nodes.append((sub, f"{node.name}.{sub.name}"))
                    elif (isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name)
                          and _public(sub.target.id)):
                        public_nodes.append((sub, f"{node.name}.{sub.target.id}"))
        for node, _name in public_nodes:
            if isinstance(node, ast.AnnAssign):
                n, b = _has_any(node.annotation), _bare(node.annotation)
            else:
                assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                n = sum(_has_any(x) for x in _fn_annotations(node))
                b = sum(_bare(x) for x in _fn_annotations(node))
            bare_seam += b
            if n:
                seam += n
                seam_where[rel] = seam_where.get(rel, 0) + n
    lengths.sort(reverse=True)
    return {"any_total": total, "any_seams": seam, "bare_total": bare, "bare_seams": bare_seam, "seams_by_file": seam_where, "longest": lengths}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--top", type=int, default=5)
    args = p.parse_args(argv)
    m = measure()
    print(f"annotations mentioning Any: {m['any_total']}  (at package seams: {m['any_seams']})")
    print(f"annotations that are Any itself (or Any | None): {m['bare_total']}"
          f"  (at package seams: {m['bare_seams']})")
    by_file = m["seams_by_file"]
    assert isinstance(by_file, dict)
    for rel, n in sorted(by_file.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {n:4d}  {rel}")
    longest = m["longest"]
    assert isinstance(longest, list)
    print("longest functions (lines):")
    for n, where in longest[: args.top]:
        print(f"  {n:4d}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
