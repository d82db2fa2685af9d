"""A fast start (issue 21): plain option values without Pydantic, and only the command that runs built.

Both shortcuts must answer exactly as Typer does without them: every parameter of kb's own
commands is coerced both ways over the same values (Typer's Pydantic adapter is the reference), and
commands are run through the one-command app and through the whole app and must print the same.
"""

import pytest

from tests.conftest import loaded_after, write_paper

# Values as a command line (strings), as defaults (ints, strings) and as variadic arguments (tuples) give them.
VALUES = [None, "", "detection", "検出", "a b", " 12", "12", "-3", "0", "-0", "007", "+5", "1_000", "12.5", "0x1f",
          "9" * 30, "x\udcff", 0, 1, 20, -1, True, (), ("検出", "detection"), ("1", "2"), ("1", "x"), ("x\udcff",)]


def _parameters():
    from typer import core
    from typer.main import get_group

    from kb.cli.main import app

    def walk(command):
        yield from (p for p in command.params if isinstance(p, core._TyperParameter))
        for sub in getattr(command, "commands", {}).values():
            yield from walk(sub)

    return get_group(app), list(walk(get_group(app)))


def _outcome(coerce, value, param, ctx):
    from typer._click.exceptions import BadParameter

    try:
        return "value", coerce(value, param=param, ctx=ctx)
    except BadParameter as exc:
        return "error", exc.format_message()


def test_every_kb_parameter_coerces_every_value_as_typers_adapter_does():
    from typer._click import Context
    from typer._coercion import build_runtime_param

    from kb.cli.params import PlainParam

    group, parameters = _parameters()
    ctx = Context(group)
    kinds = set()
    for param in parameters:
        reference = build_runtime_param(param.type_descriptor)
        plain = PlainParam(param.type_descriptor, build_runtime_param)
        kinds.add((repr(param.type_descriptor.annotation), plain.plain))
        for value in VALUES:
            expected = _outcome(reference.coerce, value, param, ctx)
            found = _outcome(plain.coerce, value, param, ctx)
            assert found == expected and type(found[1]) is type(expected[1]), (param.name, value, found, expected)
    # The parameters of the everyday commands take the short way; paths and floats keep Typer's.
    assert {("<class 'str'>", True), ("<class 'int'>", True), ("list[str]", True),
            ("<class 'pathlib.Path'>", False)} <= kinds


def test_a_value_outside_the_plain_ones_gets_typers_message(kb_env, kb):
    too_small = kb("list", "--limit", "0")
    assert too_small.code == 2
    assert too_small.err == ("kb: error: Invalid value for '--limit': Input should be greater than or equal to 1 "
                             "(see `kb list --help`)\n")
    not_a_number = kb("search", "x", "--year", "20x6")
    assert not_a_number.code == 2 and "Input should be a valid integer" in not_a_number.err


def test_the_everyday_commands_never_import_pydantic_and_a_japanese_search_never_stems(kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO", notes={"ja": "## 概要\n物体検出", "en": "## Summary\nobject detection"})
    assert kb("sync").code == 0
    # The first search builds the glossary's index (stemming its English names) into KB_HOME/cache ...
    assert "yolo" in kb("search", "検出").out
    assert (kb_env.cache_dir / "glossary-index.marshal").is_file()
    # ... which a new process reads: it imports neither Pydantic nor the stemmer.
    done, loaded = loaded_after([["list"], ["list", "--limit", "5", "--year", "2016"], ["search", "検出"],
                                 ["show", "yolo"], ["runs"], ["runners"], ["note", "yolo"],
                                 ["search", "物体検出", "--limit", "3", "--lang", "ja"]],
                                ("pydantic", "typer._adapters", "snowballstemmer"))
    assert loaded == [], done.stderr[-2000:]
    assert done.stdout.count("yolo") >= 4


def test_the_one_command_app_holds_that_command_and_the_whole_app_answers_the_rest():
    from typer.main import get_group

    from kb.cli.main import _command_for, app

    every = set(get_group(app).commands)
    assert {"list", "search", "runs", "site", "export"} <= every and len(every) > 20
    assert set(_command_for(["list", "--json"]).commands) == {"list"}
    assert set(_command_for(["runs", "compare", "a", "b"]).commands) == {"runs"}
    assert set(_command_for(["runs", "compare"]).commands["runs"].commands) == {"compare", "export", "import"}
    for args in ([], ["--help"], ["lst"], ["-h", "list"]):
        assert set(_command_for(args).commands) == every


@pytest.mark.parametrize("argv", [["list", "--help"], ["search"], ["search", "--help"], ["list", "--bogus"], ["show"],
                                  ["runs", "--help"], ["runs", "compare"], ["runs", "nope"], ["site"], ["note", "yolo"],
                                  ["list", "--sort", "nonsense"], ["export", "--help"], ["lst"], [], ["--help"]])
def test_the_one_command_app_answers_as_the_whole_app(kb_env, kb, monkeypatch, argv):
    from typer.main import get_group

    import kb.cli.main as main

    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO", notes={"ja": "## 概要\n検出"})
    assert kb("sync").code == 0
    short = kb(*argv)
    monkeypatch.setattr(main, "_command_for", lambda args: get_group(main.app))
    whole = kb(*argv)
    assert short == whole
