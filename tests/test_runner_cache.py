"""``kb runners`` reads the runner specs from ``KB_HOME/cache`` while no runner file changed (issue 21).

Each check is a fresh process, as a user runs kb: in one process Python's own module cache would
hide whether the specs came from kb's cache or from importing the runners again.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

KB = str(Path(sys.executable).with_name("kb"))

INIT = ("from kb.runs.registry import RunnerSpec\n"
        "RUNNER = RunnerSpec(name='{0}', paper='1', summary='s', datasets=(), entrypoint='{0}.train:main',"
        " config='{0}.config')\n")
CONFIG = ("from dataclasses import dataclass\n@dataclass(frozen=True)\nclass Config:\n    steps: int = 1\n"
          "PRESETS = {presets}\n")


def write_runner(extra: Path, name: str, presets: list[str]) -> None:
    (extra / name).mkdir(parents=True, exist_ok=True)
    (extra / name / "__init__.py").write_text(INIT.format(name), encoding="utf-8")
    table = "{" + ", ".join(f"{p!r}: Config()" for p in presets) + "}"
    (extra / name / "config.py").write_text(CONFIG.format(presets=table), encoding="utf-8")


def env_for(tmp_path: Path) -> dict[str, str]:
    papers = tmp_path / "papers"
    papers.mkdir(exist_ok=True)
    return {**os.environ, "KB_HOME": str(tmp_path / "home"), "KB_PAPERS": str(papers),
            "KB_RUNNERS": str(tmp_path / "extra"), "KB_ARXIV_API": "http://127.0.0.1:9/api/query"}


def runners(env: dict[str, str]) -> tuple[int, dict[str, list[str]], list[str]]:
    """Exit code, presets by runner name, and the problem lines of ``kb runners --json``."""
    done = subprocess.run([KB, "runners", "--json"], capture_output=True, text=True, env=env, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    listed = {row["name"]: row["presets"] for row in json.loads(done.stdout)}
    return done.returncode, listed, [line for line in done.stderr.splitlines() if line.startswith("problem: ")]


IMPORTED = ("import sys\nfrom pathlib import Path\nfrom kb.runs.registry import load_registry\n"
            "from kb.settings import load_settings\ns = load_settings()\n"
            "r = load_registry(s.runner_paths, cache_dir=s.cache_dir)\n"
            "print(r.get('cachedone').presets, 'cachedone.config' in sys.modules)\n")


def test_a_second_listing_reads_the_cache_and_an_edited_config_is_read_again(tmp_path):
    write_runner(tmp_path / "extra", "cachedone", ["smoke", "paper"])
    env = env_for(tmp_path)
    code, listed, problems = runners(env)
    assert code == 0 and not problems and listed["cachedone"] == ["smoke", "paper"]
    assert (tmp_path / "home" / "cache" / "runners.marshal").is_file()
    # Nothing changed: the specs come from the cache, without importing the runner's config.
    again = subprocess.run([sys.executable, "-c", IMPORTED], capture_output=True, text=True, env=env, check=True)
    assert again.stdout.split() == ["('smoke',", "'paper')", "False"]
    # A preset added to config.py (another size, so another key) is listed on the next call.
    write_runner(tmp_path / "extra", "cachedone", ["smoke", "paper", "wide"])
    code, listed, problems = runners(env)
    assert code == 0 and not problems and listed["cachedone"] == ["smoke", "paper", "wide"]


def test_a_runner_broken_after_a_cached_listing_is_named_and_hides_no_other(tmp_path):
    extra = tmp_path / "extra"
    write_runner(extra, "cachedgood", ["smoke"])
    write_runner(extra, "cachedbad", ["smoke"])
    env = env_for(tmp_path)
    code, listed, _ = runners(env)
    assert code == 0 and {"cachedgood", "cachedbad"} <= set(listed)
    (extra / "cachedbad" / "config.py").write_text("import no_such_module_kb_cache_test\n", encoding="utf-8")
    for _ in range(2):      # a registry with problems is never kept: the second call names it too
        code, listed, problems = runners(env)
        assert code == 1 and "cachedgood" in listed and "cachedbad" not in listed
        assert len(problems) == 1 and problems[0].startswith("problem: runner cachedbad (")
        assert "no_such_module_kb_cache_test" in problems[0]
    write_runner(extra, "cachedbad", ["smoke", "paper"])
    code, listed, problems = runners(env)
    assert code == 0 and not problems and listed["cachedbad"] == ["smoke", "paper"]
