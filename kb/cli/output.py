"""Printing for the CLI: rich tables for people, ``--json`` for scripts."""

import json
import re
import sys
from datetime import date, datetime
from typing import Any


def console(stderr: bool = False):
    from rich.console import Console

    # Lines are never folded by kb: a terminal wraps them itself, and a pipe or log gets one line
    # per message (a run id or path split over two lines cannot be copied or grepped).
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


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


# A message quotes an input longer than INPUT_LONG as its first INPUT_SHOWN characters: a 100 KB
# argument is not echoed back whole, while a long path (a message's usual long word) stays whole.
INPUT_SHOWN = 80
INPUT_LONG = 2 * INPUT_SHOWN
_LONG_WORD = re.compile(rf"\S{{{INPUT_LONG + 1},}}")


def clip(text: str) -> str:
    """``text`` cut to ``INPUT_SHOWN`` characters when longer than ``INPUT_LONG``, with its length."""
    return text if len(text) <= INPUT_LONG else f"{text[:INPUT_SHOWN]}… ({len(text):,} characters)"


def clip_inputs(message: str, inputs: list[str]) -> str:
    """``message`` with every long input in it (as given or as ``repr`` quotes it) and every other
    overlong word, such as an input read from a file, clipped."""
    for given in sorted({i for i in inputs if len(i) > INPUT_LONG}, key=len, reverse=True):
        for form in dict.fromkeys((given, repr(given)[1:-1])):
            message = message.replace(form, clip(given))
    return _LONG_WORD.sub(lambda m: clip(m.group()), message)


def escape(value: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(value)


def paper_json(paper, **extra) -> dict[str, Any]:
    data = paper.model_dump()
    data.pop("id", None)
    data.update(extra)
    return data
