"""Printing for the CLI: rich tables for people, ``--json`` for scripts."""

import json
import sys
from datetime import date, datetime
from typing import Any


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _default(value: Any):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_default) + "\n")


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    grid = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("" if v is None else str(v) for v in row))
    console().print(grid)


def escape(value: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(value)


def paper_json(paper, **extra) -> dict[str, Any]:
    data = paper.model_dump()
    data.pop("id", None)
    data.update(extra)
    return data
