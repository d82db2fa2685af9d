"""The ``kb`` command line: thin commands over the library (style.md, Typer)."""
