"""The layering of docs/ARCHITECTURE.md, checked on the source: which part may import which, no
import cycles between parts, and one writer per table.

Imports are read from the source (``ast``), at module level and inside functions alike: a
function-level import is still a dependency. ``if TYPE_CHECKING:`` imports count too, so the
picture a reader draws from the imports is the real one.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "osbuildd"
API_PARTS = {"api.weldr", "api.cloud", "api.imagebuilder", "api.worker"}
# what each lower layer may import (besides itself); "" is the package root (``__version__``)
ALLOWED = {
    "common": set(),
    "errors": set(),
    "engine": {"common", ""},
    "runner": {"engine", "common", ""},
}
# table -> the one module that writes it (INSERT / UPDATE / DELETE / REPLACE)
TABLE_OWNERS: dict[str, str | tuple[str, ...]] = {
    "jobs": "queue/jobs.py",
    "job_dependencies": "queue/jobs.py",
    "composes": "compose/store.py",
    "compose_groups": "compose/store.py",
    "blueprints": "blueprint/store.py",
    "blueprint_changes": "blueprint/store.py",
    "blueprint_workspace": "blueprint/store.py",
    "weldr_sources": "distro/sourcestore.py",
    # each backend keeps its own migration bookkeeping
    "schema_migrations": ("queue/db_sqlite.py", "queue/db_pg.py"),
    "workers": "queue/workers.py",
    "ib_composes": "imagebuilder/store.py", "ib_blueprints": "imagebuilder/store.py", "ib_blueprint_versions": "imagebuilder/store.py",
}


def _owners(table: str) -> set[str]:
    owner = TABLE_OWNERS[table]
    return {owner} if isinstance(owner, str) else set(owner)


WRITE = re.compile(r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+([a-z_]+)\b")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _part(module: str) -> str:
    """The part a module belongs to: ``api.weldr``, ``compose``, ``executor``, ... ("" = the root)."""
    parts = module.split(".")[1:]
    if not parts:
        return ""
    if parts[0] == "api" and len(parts) > 1:
        return f"api.{parts[1]}"
    return parts[0]


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported osbuildd module, line) for every import in the file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "osbuildd"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "osbuildd":
                continue
            # `from osbuildd.x import y` imports the module osbuildd.x.y when there is one
            subs = [f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")]
            out += [(t, node.lineno) for t in subs] if subs else [(target, node.lineno)]
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PKG / rel).with_suffix(".py").is_file() or (PKG / rel / "__init__.py").is_file()


def _graph() -> dict[str, dict[str, list[str]]]:
    """part -> imported part -> ["file:line", ...]"""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PKG.rglob("*.py")):
        src = _part(_module_name(path))
        for target, line in _imports(path):
            dst = _part(target)
            if dst != src:
                graph[src][dst].append(f"{path.relative_to(PKG.parent)}:{line}")
    return graph


def test_the_graph_is_read() -> None:
    g = _graph()
    # a few edges that must exist: the checks below would pass vacuously on an empty graph
    assert "queue" in g["services"] and "runner" in g["executor"] and "compose" in g["api.weldr"]


def test_no_api_imports_another_api() -> None:
    g = _graph()
    bad = [f"{a} -> {b} ({', '.join(where)})" for a in API_PARTS for b, where in g[a].items() if b in API_PARTS]
    assert not bad, "an API imports another API:\n" + "\n".join(bad)


def test_the_remote_worker_is_no_daemon() -> None:
    """``osbuildd worker`` runs on a host without the composer: it speaks the worker API over HTTP,
    and opens neither an API application, the daemon's services nor its stores."""
    g = _graph()
    assert "buildjob" in g["worker"], "the worker's imports were not found"
    forbidden = API_PARTS | {"daemon", "services", "executor"}
    bad = [f"worker -> {b} ({', '.join(where)})" for b, where in g["worker"].items() if b in forbidden]
    assert not bad, "the remote worker imports daemon code:\n" + "\n".join(bad)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_lower_layers_import_no_daemon_code(part: str) -> None:
    g = _graph()
    bad = [f"{part} -> {b or 'osbuildd'} ({', '.join(where)})" for b, where in g[part].items()
           if b not in ALLOWED[part]]
    assert not bad, f"{part} imports what it may not:\n" + "\n".join(bad)


def test_no_import_cycles_between_parts() -> None:
    g = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(g):
        if v not in index:
            visit(v)
    detail = []
    for comp in cycles:
        detail += [f"  {a} -> {b}: {', '.join(g[a][b])}" for a in comp for b in g[a] if b in comp]
    assert not cycles, "import cycles between parts: " + "; ".join(" <-> ".join(c) for c in cycles) \
        + "\n" + "\n".join(detail)


def test_each_table_has_one_writer() -> None:
    writers: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PKG.rglob("*.py")):
        for table in WRITE.findall(path.read_text()):
            writers[table].add(str(path.relative_to(PKG)))
    assert writers["jobs"], "the job store's own writes were not found: the pattern is wrong"
    bad = {t: sorted(w) for t, w in writers.items() if t in TABLE_OWNERS and not w <= _owners(t)}
    assert not bad, f"tables written by other modules than their owner: {bad}"
    unknown = {t: sorted(w) for t, w in writers.items() if t not in TABLE_OWNERS}
    assert not unknown, f"tables written without an owner in this test's map: {unknown}"
