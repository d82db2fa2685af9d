"""Entry point: the ``kb`` app, its command groups, and the one place errors become exit codes."""

import sys

import typer

from kb.cli import feed, jobs, papers, params, runs, site
from kb.cli.output import clip_inputs

params.install()

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
feed.register(app)


def _fail(message: str, code: int, args: list[str]) -> None:
    sys.stderr.write(f"kb: error: {clip_inputs(message, args)}\n")
    sys.exit(code)


def _catalog() -> str:
    """Where the catalog is, for messages (an SQLite file's path, or the URL without password)."""
    from sqlalchemy.engine import make_url

    from kb.settings import load_settings

    url = make_url(load_settings().database_url)
    return url.database if url.get_backend_name() == "sqlite" else url.render_as_string(hide_password=True)


def _database_message(exc) -> str | None:
    """One line for a database failure a user can act on; None for a programming error.

    The listings read SQLite through ``sqlite3`` itself (``kb.reader``), the other commands through
    SQLAlchemy, whose errors are looked for only when it was loaded.
    """
    import sqlite3

    orm = sys.modules.get("sqlalchemy.exc")        # loaded when the command went through SQLAlchemy
    if orm is not None and isinstance(exc, orm.IntegrityError):
        return "another kb process changed the same entry at the same time; nothing was changed, run the command again"
    if orm is not None and isinstance(exc, orm.OperationalError):
        reason = str(exc.orig or exc)
    elif isinstance(exc, sqlite3.OperationalError):
        reason = str(exc)
    else:
        return None
    reason = reason.splitlines()[0]
    if "locked" in reason:
        return "the catalog is locked by another kb process; try again in a moment"
    if "full" in reason:
        return f"disk full: {_catalog()}; nothing was changed; free some space and run the command again"
    if "readonly" in reason or "read-only" in reason:
        return (f"permission denied: {_catalog()} is read-only for this user (kb list, search and show still work); "
                "give write access to it and its folder, or set KB_HOME to a folder this user can write")
    return f"the catalog could not answer ({reason}); nothing was changed"


def _usage_message(exc) -> str:
    """Click's usage error as one line: what is wrong, and where the command's help is."""
    where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
    return " ".join(exc.format_message().split()) + where


def _command_for(args: list[str]):
    """The click command that runs ``args``: when they start with the name of one of kb's commands or
    groups, the app with only that one (Typer builds the parameters of every command it holds: the
    forty others take some 25 ms, a quarter of ``import typer``); otherwise (``kb``, ``kb --help``, a misspelt
    command) the whole app, which lists or suggests them all. Either answers ``args`` alike."""
    import copy

    from typer.main import get_command_name, get_group

    name = args[0] if args else ""
    commands = [c for c in app.registered_commands if (c.name or get_command_name(c.callback.__name__)) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return get_group(app)
    only = copy.copy(app)
    only.registered_commands, only.registered_groups = commands, groups
    return get_group(only)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a ``KBError``, a usage error (or a known system failure) becomes one line and an exit code."""
    # Typer's own copy of click; click itself prints usage errors on several lines.
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    from kb.errors import KBError, os_error

    args = sys.argv[1:] if argv is None else argv
    try:
        code = _command_for(args)(args=argv, prog_name="kb", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        _fail(_usage_message(exc), exc.exit_code, args)
    except ClickException as exc:
        _fail(exc.format_message(), exc.exit_code, args)
    except typer.Abort:
        _fail("aborted; nothing was changed", 1, args)
    except KBError as exc:
        _fail(str(exc), exc.exit_code, args)
    except KeyboardInterrupt:
        _fail("interrupted", 130, args)
    except OSError as exc:
        _fail(str(os_error(exc)), 1, args)
    except Exception as exc:  # noqa: BLE001 - database errors are imported lazily
        message = _database_message(exc)
        if message is None:
            raise
        _fail(message, 1, args)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
