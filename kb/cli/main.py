"""Entry point: the ``kb`` app, its command groups, and the one place errors become exit codes."""

import errno
import sys

import typer

from kb.cli import jobs, papers, runs, site

app = typer.Typer(
    name="kb",
    help="A paper knowledge base with reproducibility runners.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich help formatting costs more than the rest of `kb --help` together.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
papers.register(app)
runs.register(app)
site.register(app)
jobs.register(app)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"kb: error: {message}\n")
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a ``KBError`` (or a known system failure) becomes one line and an exit code."""
    from kb.errors import KBError

    try:
        app(args=argv, prog_name="kb", standalone_mode=True)
    except KBError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            _fail(f"disk full while writing {exc.filename or ''}; free some space and run the command again", 1)
        raise
    except Exception as exc:  # noqa: BLE001 - database errors are imported lazily
        from sqlalchemy.exc import IntegrityError, OperationalError

        if isinstance(exc, OperationalError) and "locked" in str(exc):
            _fail("the catalog is locked by another kb process; try again in a moment", 1)
        if isinstance(exc, OperationalError) and "full" in str(exc):
            _fail("disk full while writing the catalog; nothing was changed; free some space and run the command again", 1)
        if isinstance(exc, IntegrityError):
            _fail("another kb process changed the same entry at the same time; nothing was changed, run the command again", 1)
        raise


if __name__ == "__main__":
    main()
