"""The one error family of kb.

The library raises these with a message written for the user; only the CLI turns them into one
line on stderr and an exit code (design.md, Errors).
"""

import errno
import os


class KBError(Exception):
    """A failure the user can act on. ``exit_code`` 1 means the command failed."""

    exit_code = 1


class BadInput(KBError):
    """The user gave something malformed (an id, a path, a value): exit code 2."""

    exit_code = 2


class NotFound(KBError):
    """A paper, runner, run or job that does not exist."""


class NetworkError(KBError):
    """arXiv (or another remote) could not be reached and nothing cached could answer."""


class SchemaError(KBError):
    """The catalog database is from another kb version or is not a kb catalog."""


class RunInterrupted(KBError):
    """A run stopped on Ctrl-C or SIGTERM after writing a checkpoint."""

    exit_code = 130


def os_error(exc: OSError, path=None) -> KBError:
    """The user's message for a failed file operation on ``path`` (default: the error's file name)."""
    where = str(path or exc.filename or "")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        if where and not os.path.lexists(where):
            where = os.path.dirname(where)  # a new (or temporary) file: its folder refused it
        return KBError(f"permission denied: {where}; give this user write access to it (chmod/chown), "
                       "or set KB_HOME / KB_PAPERS to folders it can write")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return KBError(f"disk full: {where or 'while writing'}; free some space and run the command again")
    return KBError(f"cannot use {where or 'a file'}: {exc.strerror or exc}")
