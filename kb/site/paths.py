"""Where each page lives, relative to the generated docs folder.

An item's page sits in a singular folder (``paper/yolo.md``, ``run/<id>.md``) and listings in
plural ones (``papers/index.md``, ``papers/2.md``), so no slug, tag or id can collide with a
listing page. Tags, runner names and run ids come from users and other machines: ``safe_name``
keeps a plain one as it is and turns anything else into a clean name with a digest.
"""

import hashlib
import posixpath
import re
from functools import lru_cache
from urllib.parse import quote

_PLAIN = re.compile(r"[^\W_][\w-]{0,79}")
_RESERVED = {"index"}


def safe_name(value: str) -> str:
    if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
        return value
    cleaned = re.sub(r"[^\w-]+", "-", value).strip("-_")[:60]
    return f"{cleaned or 'x'}-{hashlib.sha1(value.encode()).hexdigest()[:8]}"


def listing(folder: str, number: int = 1) -> str:
    """Page ``number`` of a paginated listing in ``folder``."""
    return f"{folder}/index.md" if number == 1 else f"{folder}/{number}.md"


def paper_page(slug: str) -> str:
    return f"paper/{slug}.md"


def run_page(run_id: str) -> str:
    return f"run/{safe_name(run_id)}.md"


def runner_folder(name: str) -> str:
    return f"runner/{safe_name(name)}"


def tag_folder(tag: str) -> str:
    return f"tag/{safe_name(tag)}"


def relative(from_page: str, to_path: str) -> str:
    """A link from one generated page to another file of the site, as MkDocs resolves it."""
    return _relative(posixpath.dirname(from_page) or ".", to_path)


@lru_cache(maxsize=65536)
def _relative(folder: str, to_path: str) -> str:
    # Cached: a site's pages link from a few folders to the same tags, runners and listings.
    return posixpath.relpath(to_path, folder)


@lru_cache(maxsize=65536)
def site_url(path: str) -> str:
    """A generated page's (or file's) address from the site's root, as MkDocs' directory URLs have it
    (``paper/yolo.md`` -> ``/paper/yolo/``, ``papers/index.md`` -> ``/papers/``), quoted as MkDocs quotes it."""
    if path == "index.md" or path.endswith("/index.md"):
        path = path[: -len("index.md")]
    elif path.endswith(".md"):
        path = path[: -len(".md")] + "/"
    return "/" + quote(path)
