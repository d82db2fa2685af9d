"""MkDocs hooks of the kb site (registered in mkdocs.yml under ``hooks:``).

``on_page_markdown`` / ``on_page_content``: kb's pages hold HTML it built (tables, run lists,
listings) beside Markdown (headings, notes); the front matter's ``kb_html`` gives the lengths of
the stretches, in turn Markdown, HTML, Markdown, ... (kb/site/pages.py ``page_file``), and what
follows them is Markdown too. Only the
Markdown goes through Python-Markdown, with a placeholder paragraph where each HTML stretch
goes; the HTML then takes the placeholder's place. A placeholder holds a random word drawn per
process, so no note can name one.

``on_env``: Material's ~40 templates are compiled to Python on every build, in every render
process; a Jinja bytecode cache in the generated docs folder keeps the compiled code between
builds. Jinja keys each entry by the template's name and a digest of its source, so an edited
override or another Material version compiles afresh. The folder's name starts with a dot:
MkDocs leaves dot-files out of the site. It also gives the templates ``kb_nav_key``,
``kb_rendered`` and ``kb_remember``, with which docs/overrides/main.html renders the header's tabs
once for all the pages that link to the sections alike (the same bytes, ~0.2 s CPU at 1,000 papers).
"""

import secrets
from pathlib import Path

BYTECODE_CACHE = ".jinja-cache"     # in the docs folder (kb's site-src)
_WORD = "kbhtml" + secrets.token_hex(8)
_blocks: dict[str, dict[str, str]] = {}    # page -> placeholder paragraph -> its HTML, until it is rendered


def on_env(env, config, files):
    from jinja2 import FileSystemBytecodeCache

    folder = Path(config["docs_dir"]) / BYTECODE_CACHE
    folder.mkdir(exist_ok=True)
    env.bytecode_cache = FileSystemBytecodeCache(str(folder))
    rendered: dict[tuple, str] = {}
    env.globals.update(kb_nav_key=_nav_key, kb_rendered=rendered,
                       kb_remember=lambda key, html: rendered.setdefault(key, html) if key is not None else html)
    return env


def _nav_key(part, nav, page):
    """What a navigation part (Material's tabs) of ``page`` depends on: each section's link from the
    page and whether it is the page's; None for a page of the navigation itself (its part may hold
    the page's own table of contents), never kept."""
    from mkdocs.utils import normalize_url

    if page is None or any(item == page for item in nav.items):
        return None
    return (part, *((normalize_url(item.url, page), item.active) for item in nav.items))


def on_page_markdown(markdown, page, config, files):
    lengths = page.meta.get("kb_html")
    if not lengths:
        return markdown
    from mkdocs.exceptions import PluginError

    if not isinstance(lengths, list) or len(lengths) % 2 == 0 or sum(lengths) > len(markdown):
        raise PluginError(f"{page.file.src_uri}: its kb_html lengths do not match the page; build it again with kb site build")
    stretches, start = [], 0
    for length in lengths:
        stretches.append(markdown[start : start + length])
        start += length
    stretches[-1] += markdown[start:]       # Markdown added at the end (kb/site/feed_pages.py adds links to the home page)
    blocks = {}
    for index in range(1, len(stretches), 2):
        word = f"{_WORD}x{index}"
        blocks[f"<p>{word}</p>"] = stretches[index]
        stretches[index] = word + "\n\n"
    _blocks[page.file.src_uri] = blocks
    return "".join(stretches)


def on_page_content(html, page, config, files):
    blocks = _blocks.pop(page.file.src_uri, None)
    if not blocks:
        return html
    from mkdocs.exceptions import PluginError

    for placeholder, block in blocks.items():
        if html.count(placeholder) != 1:
            raise PluginError(f"{page.file.src_uri}: Markdown did not keep kb's HTML placeholder as a paragraph")
        html = html.replace(placeholder, block)
    return html
