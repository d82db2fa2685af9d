"""Derived data kept between runs under a key of what it was made from (issue 21's start-up work).

A cache file holds ``(key, value)`` in ``marshal`` (fast, and Python's own format for bytecode): the
glossary's index (``kb.search.load_glossary``), the runner specs (``kb.runs.registry``) and the site's
search tokens. ``file_stats`` is the key Python uses for bytecode: each file's path, modification time
and size. A cache is never trusted: missing, damaged, from another Python or under another key, it
reads as None and the caller builds the value again; one that cannot be written is left unwritten.
Only the standard library is imported here: ``kb search`` and ``kb runners`` read caches at start.
"""

import marshal
import os
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any


def file_stats(paths: Iterable[Path]) -> tuple:
    """``(path, mtime_ns, size)`` of each file, ``(path, None, None)`` for one that is missing."""
    stats = []
    for path in paths:
        try:
            found = os.stat(path)
        except OSError:
            stats.append((str(path), None, None))
        else:
            stats.append((str(path), found.st_mtime_ns, found.st_size))
    return tuple(stats)


def read(path: Path, key: Any) -> Any | None:
    """The value stored at ``path`` under ``key``; None when there is none, or it is another key's."""
    try:
        stored_key, value = marshal.loads(Path(path).read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None         # no cache yet, one from another Python, or damaged
    return value if stored_key == key else None


def write(path: Path, key: Any, value: Any) -> None:
    """Keep ``value`` at ``path`` under ``key``, whole or not at all (a reader beside this writer sees the
    old file or the new one); a read-only or full disk keeps none."""
    path = Path(path)
    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_bytes(marshal.dumps((key, value)))
        os.replace(scratch, path)
    except OSError:
        with suppress(OSError):
            scratch.unlink(missing_ok=True)
