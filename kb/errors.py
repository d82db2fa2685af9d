"""The one error family of kb.

The library raises these with a message written for the user; only the CLI turns them into one
line on stderr and an exit code (design.md, Errors).
"""


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
