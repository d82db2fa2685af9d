"""Printing for the CLI: aligned tables on a terminal, one tab-separated row per line in a pipe, ``--json`` for scripts.

On a terminal (``is_terminal``) a listing is a table as wide as the terminal, one line a row: the
columns that name things (ids, slugs, run ids: ``whole``) are never split or cut, long text
(titles, reasons) is cut with an ellipsis, the last columns are left out when not even that
leaves room, and ``--wide`` shows everything whole. In a pipe or a log every row is one
line of tab-separated fields under a header line, with nothing drawn and nothing cut, so
``kb runs | grep RUN_ID`` and ``cut -f`` work. Long steps show a progress bar on a terminal's
stderr (``progress_bar``, rich's) and nothing elsewhere. Tables and lines (``table``, ``say``) are
drawn here with ANSI styles, measured in terminal cells by rich's width table (``rich.cells``):
importing rich's console and table costs ~40 ms, a third of a listing's start.
"""

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

# A cell: its text, or (text, rich style) for a cell that must stand out on a terminal.
Cell = Any


def is_terminal(stream=None) -> bool:
    """Whether ``stream`` (stdout) is a terminal, where output is styled and fitted to its width."""
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def console(stderr: bool = False, width: int | None = None):
    from rich.console import Console

    # Lines are never folded by kb: a terminal wraps them itself, and a pipe or log gets one line
    # per message (a run id or path split over two lines cannot be copied or grepped).
    terminal = is_terminal(sys.stderr if stderr else sys.stdout)
    return Console(stderr=stderr, highlight=False, soft_wrap=True, force_terminal=terminal or None, width=width)


def say(*parts: str | tuple[str, str], err: bool = False, wide: bool = True) -> None:
    """One line from plain pieces and ``(text, style)`` pieces: styled on a terminal, plain text
    otherwise (no markup is read from the text, so nothing needs escaping). ``wide=False`` cuts the
    line to the terminal's width with an ellipsis."""
    stream = sys.stderr if err else sys.stdout
    if not is_terminal(stream):
        stream.write("".join(p if isinstance(p, str) else p[0] for p in parts) + "\n")
        return
    style = _styler()
    pieces = [(_printable(p), None) if isinstance(p, str) else (_printable(p[0]), p[1]) for p in parts]
    room = terminal_width(stream)
    cut = not wide and sum(cell_width(text) for text, _ in pieces) > room
    line = []
    for text, how in pieces:
        if cut and cell_width(text) >= room:       # the piece the line ends in, with the ellipsis
            line.append(style(_cut(text + "…", room), how))
            break
        room -= cell_width(text)
        line.append(style(text, how))
    stream.write("".join(line) + "\n")


# Terminal output without rich (whose import is ~40 ms of a listing's start): ANSI styles, widths in
# terminal cells (East Asian wide characters count two), cells cut with an ellipsis.
_SGR = {"bold": "1", "dim": "2", "red": "31", "bold red": "1;31"}
_CONTROL = dict.fromkeys([*range(0x20), 0x7f], None)


def _styler() -> Callable[[str, str | None], str]:
    """A terminal's styling: SGR codes; without colour under ``NO_COLOR`` (bold and dim stay, as rich
    does), none on a ``TERM=dumb`` terminal."""
    if os.environ.get("TERM") in ("dumb", "unknown"):
        return lambda text, how: text
    plain = "NO_COLOR" in os.environ

    def styled(text: str, how: str | None) -> str:
        codes = [c for c in _SGR.get(how or "", "").split(";") if c and not (plain and c.startswith("3"))]
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m" if codes and text else text

    return styled


def terminal_width(stream=None) -> int:
    """The terminal's columns: ``COLUMNS`` when set, else the terminal's own size, else 80."""
    found = os.environ.get("COLUMNS", "")
    if found.isdigit() and int(found) > 0:
        return int(found)
    try:
        return os.get_terminal_size((stream or sys.stdout).fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


def cell_width(text: str) -> int:
    """How many terminal cells ``text`` takes (rich's measure: wide characters two, combining none)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len        # a table of Unicode widths only (~7 ms), not rich's console

    return cell_len(text)


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: whole, or its start and "…"."""
    if cell_width(text) <= width:
        return text
    if text.isascii():
        return text[: max(width - 1, 0)] + "…" if width else ""
    from rich.cells import get_character_cell_size

    kept, used = [], 0
    for char in text:
        size = get_character_cell_size(char)
        if used + size > width - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept) + "…" if width else ""


def _printable(text: str) -> str:
    """``text`` without control characters (an escape sequence in a title must not reach the terminal)."""
    return text if text.isprintable() else text.translate(_CONTROL)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback for a long library call (sync, import, site build, feed),
    drawing a bar on stderr when it is a terminal; None otherwise, so a pipe or a log gets nothing."""
    if not is_terminal(sys.stderr):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


# Rows a listing shows on a terminal without --all or --limit; a pipe and --json get every row.
TERMINAL_ROWS = 100


def row_limit(limit: int | None, show_all: bool, as_json: bool) -> int | None:
    """The rows a listing asks for: ``--limit`` when given; else every row with ``--all``, in a pipe or
    with ``--json`` (``kb runs | grep RUN_ID`` finds any run), and the first ``TERMINAL_ROWS`` on a terminal."""
    if limit is not None:
        return limit
    return None if show_all or as_json or not is_terminal() else TERMINAL_ROWS


def say_more(shown: int, total: int, command: str, noun: str, order: str) -> None:
    """The line under a listing a terminal was shown only the first rows of: how many more, and how to
    see them (a pipe gets rows only)."""
    if shown < total and is_terminal():
        say((f"… and {total - shown:,} more: {command} --all shows every {noun}, --limit N the {order} N", "dim"))


def _default(value: Any):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_default) + "\n")


def _text(cell: Cell) -> str:
    if isinstance(cell, str):
        return cell
    return "" if cell is None else cell[0] if isinstance(cell, tuple) else str(cell)


def table(title: str | None, columns: list[str], rows: list[list[Cell]], *, whole: tuple[str, ...] = (),
          wide: bool = False) -> None:
    """Print a listing (see the module docstring).

    Args:
        title: a line above the table on a terminal ("52 papers"); not printed in a pipe.
        columns: the header names.
        rows: one list of cells per row; a cell's text may hold several lines (one claim a line),
            shown as lines with ``wide``, else joined by "; " as in a pipe.
        whole: the columns never cut or split (ids, slugs, run ids, names).
        wide: on a terminal, show every value whole (rows longer than the terminal wrap there).
    """
    if not is_terminal():
        sys.stdout.write("\n".join(["\t".join(columns)] + [tsv_line(row) for row in rows]) + "\n")
        return
    if not wide:
        rows = [[(_one_line(c[0]), c[1]) if isinstance(c, tuple) else _one_line(_text(c)) for c in row] for row in rows]
    room = terminal_width()
    natural = [max([cell_width(name)] + [cell_width(line) for row in rows for line in _text(row[i]).splitlines() or [""]])
               for i, name in enumerate(columns)]
    kept = [name in whole for name in columns]
    shown = list(range(len(columns)))
    widths = natural
    while not wide:
        widths = _fit([natural[i] for i in shown], [kept[i] for i in shown], room - 2 * (len(shown) - 1))
        cut = [i for i in shown if not kept[i]]
        if sum(widths) + 2 * (len(shown) - 1) <= room or not cut:
            break
        shown.remove(cut[-1])       # no room for CUT_MIN cells: the last column that may be cut goes (--wide shows it)
    # With --wide, or columns kept whole that need more than the terminal has, a row is longer
    # than the terminal: the terminal wraps it, and every value stays in one piece in the text.
    style = _styler()
    out = [style(title, "bold")] if title else []
    out.append(_row_line([(name, "bold") for name in (columns[i] for i in shown)], widths, style))
    for row in rows:
        cells = [row[i] for i in shown]
        texts = [_text(c).splitlines() or [""] for c in cells]
        styles = [c[1] if isinstance(c, tuple) else None for c in cells]
        for k in range(max(len(t) for t in texts)):
            out.append(_row_line([(t[k] if k < len(t) else "", how) for t, how in zip(texts, styles)], widths, style))
    sys.stdout.write("\n".join(out) + "\n")


def _row_line(cells: list[tuple[str, str | None]], widths: list[int], style) -> str:
    """One line of a table: each cell cut to its column's width and padded to it, two spaces between."""
    parts = []
    for (text, how), width in zip(cells, widths):
        text = _cut(_printable(text), width)
        parts.append(style(text, how) + " " * (width - cell_width(text)))
    return "  ".join(parts).rstrip()


def tsv_line(row: list[Cell]) -> str:
    """One row as a pipe gets it: its cells on one line each, tab-separated."""
    return "\t".join(_one_line(_text(c)) for c in row)


def _one_line(text: str) -> str:
    """A cell's text on one line: its lines joined by "; ", tabs and runs of spaces as one space."""
    if "\n" not in text and "\t" not in text and "  " not in text and "\r" not in text:
        return text.strip()             # most cells: a listing of 100,000 papers has 800,000
    return "; ".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


# The fewest cells a column that may be cut is shown in ("detecti…"); with less room it is left out.
CUT_MIN = 8


def _fit(natural: list[int], kept: list[bool], room: int) -> list[int]:
    """Column widths in ``room`` cells: kept columns at their natural width, the others sharing the
    rest equally (a column narrower than its share keeps its width and leaves the rest to the
    others; none narrower than ``CUT_MIN`` or its own width)."""
    widths = list(natural)
    left = room - sum(w for w, keep in zip(natural, kept) if keep)
    cut = sorted((i for i, keep in enumerate(kept) if not keep), key=lambda i: natural[i])
    for number, i in enumerate(cut):
        widths[i] = min(natural[i], max(CUT_MIN, left // (len(cut) - number)))
        left -= widths[i]
    return widths


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
