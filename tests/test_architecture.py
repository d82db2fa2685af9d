"""The flow of design.md, read off the imports: sources -> ingest -> catalog -> site/CLI, one way.

Every ``import`` in ``kb/`` counts, at module level or inside a function (a deferred import is
still a dependency), so a cycle cannot hide behind a function-level import.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kb"

# What shows the catalog; it reads and never writes (design.md, The flow).
READ_SIDE = ("kb.queries", "kb.search", "kb.bibtex", "kb.site", "kb.runs.overview", "kb.cli.output")
WRITE_SIDE = ("kb.ingest", "kb.runs.execute")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def kb_imports(path: Path) -> set[str]:
    """The ``kb.*`` modules one file imports (``from kb.x import y`` names ``kb.x.y`` when it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "kb"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "kb" and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        edges[name] = {m for m in kb_imports(path) if m in modules and m != name and not name.startswith(m + ".")}
    return edges


def test_no_import_cycle_anywhere_in_kb():
    edges = graph()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle.extend(path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt])
                return True
            if nxt not in state and visit(nxt, path + [node]):
                return True
        state[node] = 2
        return False

    for start in sorted(edges):
        if start not in state and visit(start, []):
            break
    assert not cycle, " -> ".join(cycle)


@pytest.mark.parametrize("reader", READ_SIDE)
def test_the_read_side_never_reaches_the_write_side(reader):
    edges = graph()
    seen, todo = set(), [m for m in edges if m == reader or m.startswith(reader + ".")]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += edges[current]
    reached = sorted(m for m in seen if m.startswith(WRITE_SIDE))
    assert not reached, f"{reader} imports {reached}"


def test_the_import_reader_sees_deferred_imports(tmp_path):
    # The two tests above rely on this: an import inside a function is a dependency too.
    source = tmp_path / "a.py"
    source.write_text("def f():\n    from kb.ingest.sync import sync\nimport kb.queries\n")
    assert {"kb.ingest.sync", "kb.ingest.sync.sync", "kb.queries"} <= kb_imports(source)
