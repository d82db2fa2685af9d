"""Site commands: kb site build, kb site serve."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from kb.cli.output import console, escape, print_json, progress_bar

site_app = typer.Typer(rich_markup_mode=None, help="Build or serve the static site (MkDocs Material) from the catalog.", no_args_is_help=True)

OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: site/ in the project).")]


def _build(out: Optional[Path]):
    from kb.settings import load_settings
    from kb.site.build import build_site

    with progress_bar("site: catalog, pages, figures, mkdocs, search index") as progress:
        report = build_site(load_settings(), out, progress=progress)
    err = console(stderr=True)
    for warning in report.warnings:
        err.print(f"mkdocs: {escape(warning)}")
    return report


@site_app.command()
def build(out: OutOpt = None, as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False) -> None:
    """Generate the pages from the catalog and render the site with MkDocs."""
    from kb.errors import KBError

    report = _build(out)
    if as_json:
        print_json(report.__dict__)
    else:
        console().print(f"built {report.pages} pages and {report.figures} figures ({report.figures_drawn} drawn) "
                        f"into {report.out} in {report.seconds:.1f} s\nopen {report.out / 'index.html'}, or run: kb site serve")
    for problem in report.runner_problems:
        console(stderr=True).print(f"problem: {escape(problem)}")
    if report.runner_problems:
        raise KBError(f"{len(report.runner_problems)} runner package(s) could not be loaded (listed above); the site was built without them")


@site_app.command()
def serve(
    out: OutOpt = None,
    port: Annotated[int, typer.Option(help="Port on localhost (0: any free port).")] = 8000,
) -> None:
    """Build the site, then serve it on http://127.0.0.1:PORT until Ctrl-C."""
    from kb.errors import BadInput
    from kb.site.build import site_server

    if not 0 <= port <= 65535:
        raise BadInput(f"--port {port}: a port is a number from 0 to 65535 (0: any free port)")
    report = _build(out)
    server = site_server(report.out, port)
    console().print(f"built {report.pages} pages; serving {report.out} at "
                    f"http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console().print("stopped")
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    app.add_typer(site_app, name="site")
