"""A Markdown extension that keeps user content inert on the site (enabled in mkdocs.yml).

Notes and titles are user content and must not run on the site. Python-Markdown passes raw HTML
through and ``attr_list`` lets text set any attribute, so this extension removes the raw-HTML
processors (``<script>`` and ``<img onerror=...>`` then show as text) and, after every other tree
processor, drops event-handler and style attributes and empties any link or image URL whose scheme
is not http(s) or mailto. Entities are decoded before the scheme check, as a browser would.
"""

import html
import re

from markdown import Extension
from markdown.treeprocessors import Treeprocessor

SAFE_SCHEMES = {"http", "https", "mailto"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "background", "cite", "data"}
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
# Browsers ignore ASCII whitespace and control characters inside a URL's scheme.
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f]+")


def safe_url(value: str) -> bool:
    """True for relative URLs and http(s)/mailto ones."""
    plain = _IGNORED_IN_URL.sub("", html.unescape(value)).lower()
    scheme = _SCHEME.match(plain)
    return scheme is None or scheme.group(1) in SAFE_SCHEMES


class _Scrub(Treeprocessor):
    def run(self, root) -> None:
        for element in root.iter():
            for name in list(element.attrib):
                lowered = name.lower()
                if lowered.startswith("on") or lowered in ("style", "srcdoc"):
                    del element.attrib[name]
                elif lowered in URL_ATTRIBUTES and not safe_url(element.attrib[name]):
                    element.attrib[name] = ""     # emptied, not dropped: MkDocs expects every link to have one


class SafeMarkdown(Extension):
    def extendMarkdown(self, md) -> None:  # noqa: N802 - Python-Markdown's name
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        # Priority 0: after attr_list, toc and the rest, so nothing can add an attribute later.
        md.treeprocessors.register(_Scrub(md), "kb_scrub", 0)


def makeExtension(**kwargs) -> SafeMarkdown:  # noqa: N802 - the name Python-Markdown looks up
    return SafeMarkdown(**kwargs)
