"""Writes under ``papers/`` and ``KB_HOME`` that are atomic and undone when a command fails."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlmodel import Session

from kb.db import session_scope
from kb.errors import BadInput, KBError
from kb.settings import Settings


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_FILE_MODE = 0o666 & ~_umask()


_TMP = ".tmp"           # write_atomic's temporary files: .<name>.<random>.tmp beside the file


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP)
    try:
        os.fchmod(fd, _FILE_MODE)      # mkstemp makes 0600; these files are shared and committed
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise KBError(f"cannot write {path}: {exc.strerror or exc}") from None


class FileChanges:
    """Staged file writes/removals under one root, applied together and undone on failure."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._resolved_root = root.resolve()       # once, not once a file (a sync reads thousands)
        self._undo: list[tuple[Path, str | None]] = []
        self._removed_dirs: list[tuple[Path, Path]] = []

    def _inside(self, path: Path) -> Path:
        """``path`` under the root, resolved, refusing anything that escapes it (``../x``, absolute
        paths, links)."""
        resolved = (self.root / path).resolve()
        if not resolved.is_relative_to(self._resolved_root):
            raise BadInput(f"{path} is outside {self.root}; refusing to write there")
        return resolved

    def name(self, relative: Path | str) -> str:
        """How messages name a file: ``papers/yolo/paper.yaml``."""
        return f"{self.root.name}/{Path(relative).as_posix()}"

    def read(self, relative: Path | str) -> str | None:
        """The file's text as it is (CRLF line ends kept), or None when there is none."""
        path = self._inside(Path(relative))
        try:
            return path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise KBError(f"cannot read {self.name(relative)}: {getattr(exc, 'strerror', None) or exc}") from None

    def sweep(self, folder: Path | str) -> None:
        """Remove what a killed write left in ``folder`` (and its ``notes/``): temporary files, and
        the folder itself when nothing else is in it. Only under the write lock: every writer of
        these folders holds it, so no temporary file found here belongs to a live write."""
        for sub in (Path(folder) / "notes", Path(folder)):
            path = self._inside(sub)
            for leftover in path.glob(f".*{_TMP}"):
                leftover.unlink(missing_ok=True)
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()

    def write(self, relative: Path | str, text: str) -> Path:
        path = self._inside(Path(relative))
        old = self.read(relative)
        if old == text:
            return path
        write_atomic(path, text)
        self._undo.append((path, old))
        return path

    def remove_tree(self, relative: Path | str) -> None:
        path = self._inside(Path(relative))
        if not path.exists():
            return
        backup = Path(tempfile.mkdtemp(prefix="kb-removed-"))
        shutil.move(str(path), backup / "tree")
        self._removed_dirs.append((path, backup))

    def rollback(self) -> None:
        for path, old in reversed(self._undo):
            if old is None:
                path.unlink(missing_ok=True)
                try:
                    path.parent.rmdir()
                except OSError:
                    pass
            else:
                write_atomic(path, old)
        for path, backup in reversed(self._removed_dirs):
            shutil.move(str(backup / "tree"), path)
            shutil.rmtree(backup, ignore_errors=True)
        self._undo.clear()
        self._removed_dirs.clear()

    def commit(self) -> None:
        for _path, backup in self._removed_dirs:
            shutil.rmtree(backup, ignore_errors=True)
        self._undo.clear()
        self._removed_dirs.clear()


@contextmanager
def transaction(settings: Settings) -> Iterator[tuple[Session, FileChanges]]:
    """One catalog transaction plus staged writes under ``papers/``: all land or none do."""
    files = FileChanges(settings.papers)
    try:
        with session_scope(settings, write=True) as session:
            yield session, files
    except BaseException:
        files.rollback()
        raise
    files.commit()
