"""MkDocs hooks of the kb site (registered in mkdocs.yml under ``hooks:``).

``on_env``: Material's ~40 templates are compiled to Python on every build, in every render
process (~0.3 s each); a Jinja bytecode cache in the generated docs folder keeps the compiled
code between builds. Jinja keys each entry by the template's name and a digest of its source, so
an edited override or another Material version compiles afresh. The folder's name starts with a
dot: MkDocs leaves dot-files out of the site.
"""

from pathlib import Path

BYTECODE_CACHE = ".jinja-cache"     # in the docs folder (kb's site-src)


def on_env(env, config, files):
    from jinja2 import FileSystemBytecodeCache

    folder = Path(config["docs_dir"]) / BYTECODE_CACHE
    folder.mkdir(exist_ok=True)
    env.bytecode_cache = FileSystemBytecodeCache(str(folder))
    return env
