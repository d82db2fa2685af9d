"""One convention per layer (design.md): every stored time is an aware UTC instant."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import DateTime
from sqlmodel import SQLModel

import kb.models  # noqa: F401 - registers every table
from kb.db import session_scope
from kb.models import Paper, RunRecord, UTCDateTime


def test_every_time_column_is_stored_as_utc():
    plain = [f"{table.name}.{column.name}" for table in SQLModel.metadata.tables.values()
             for column in table.columns
             if isinstance(column.type, DateTime) and not isinstance(column.type, UTCDateTime)]
    assert plain == []


def test_a_time_given_in_tokyo_reads_back_as_the_same_instant_in_utc(kb_env):
    tokyo = timezone(timedelta(hours=9))
    started = datetime(2026, 4, 1, 9, 30, tzinfo=tokyo)            # 00:30 UTC
    with session_scope(kb_env) as session:
        session.add(Paper(key="1506.02640", slug="yolo", title="YOLO", added=started))
        session.add(RunRecord(id="r1", runner="yolo", paper_key="1506.02640", preset="smoke", status="succeeded",
                              run_dir="/tmp/r1", started=started))
    with session_scope(kb_env) as session:
        paper = session.get(Paper, 1)
        run = session.get(RunRecord, "r1")
    for value in (paper.added, run.started):
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
        assert (value.hour, value.minute) == (0, 30) and value == started


def test_data_functions_take_a_keyword_only_session():
    # Read off the source (design.md, style.md): ``def f(..., *, session)`` in every module function.
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "kb"
    positional = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        methods = {id(f) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for f in c.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and id(node) not in methods:
                if "session" in [a.arg for a in node.args.posonlyargs + node.args.args]:
                    positional.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name}")
    assert positional == []
