"""The one module that talks to arXiv (design.md, arXiv access).

kb queries arXiv's API and reads its Atom answers itself, through a session that adds what a bare
client lacks: a timeout, one polite limiter shared by every kb process on the machine (a lock
file holding the last request's time in the cache folder), capped backoff on 429/503, an on-disk cache of raw answers,
and an offline mode that answers id lookups from that cache.
"""

import fcntl
import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from kb.errors import KBError, NetworkError, os_error
from kb.ids import PaperId, parse_id

BATCH = 100          # entries a request asks for (ids looked up at once, or a page of a query)
SORTS = ("relevance", "lastUpdatedDate", "submittedDate")
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
_ATOM_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
    b'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">'
)


@dataclass
class Metadata:
    """What kb keeps of an arXiv entry."""

    key: str
    version: int | None
    title: str
    authors: list[str]
    abstract: str
    categories: list[str]
    primary_category: str | None
    published: datetime | None
    updated: datetime | None
    doi: str | None
    journal_ref: str | None
    comment: str | None
    links: list[str] = field(default_factory=list)


@dataclass
class Policy:
    """How politely and patiently to talk to arXiv (tests shrink the numbers)."""

    min_interval: float = 3.0
    timeout: float = 20.0
    retries: int = 4
    backoff: float = 5.0
    backoff_cap: float = 60.0


class _Response:
    """What kb reads of an HTTP answer (from the network or the cache)."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content


class Session:
    """kb's HTTP access to arXiv: the polite limiter, backoff, the raw-answer cache and offline mode."""

    def __init__(self, cache_dir: Path, *, offline: bool, policy: Policy) -> None:
        self.cache_dir = cache_dir
        self.offline = offline
        self.policy = policy
        self.used_cache = False
        (cache_dir / "raw").mkdir(parents=True, exist_ok=True)
        (cache_dir / "ids").mkdir(parents=True, exist_ok=True)

    # -- cache --------------------------------------------------------------------------
    def _raw_path(self, url: str) -> Path:
        return self.cache_dir / "raw" / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".xml")

    def _id_path(self, key: str) -> Path:
        return self.cache_dir / "ids" / (key.replace("/", "_") + ".xml")

    def _store(self, url: str, content: bytes) -> None:
        """Cache an answer that parses; a garbled one (a proxy's error page, a cut-off feed) is an
        error, not an empty result (read as "no such paper" it would be wrong)."""
        from lxml import etree

        root = read_xml(content)
        _write_bytes(self._raw_path(url), content)
        for entry in root.iterfind(f"{ATOM}entry"):
            entry_id = entry.findtext(f"{ATOM}id") or ""
            try:
                key = parse_id(entry_id).key
            except KBError:
                continue
            _write_bytes(self._id_path(key), etree.tostring(entry))

    def _from_cache(self, url: str) -> bytes | None:
        raw = self._raw_path(url)
        if raw.exists():
            return raw.read_bytes()
        # An id lookup is answered entry by entry, whatever batch first fetched each entry.
        ids = parse_qs(urlsplit(url).query).get("id_list", [""])[0]
        keys = [parse_id(i).key for i in ids.split(",") if i]
        if not keys:
            return None
        entries = [self._id_path(k) for k in keys]
        if not all(p.exists() for p in entries):
            return None
        body = b"".join(p.read_bytes() for p in entries)
        total = f"<opensearch:totalResults>{len(entries)}</opensearch:totalResults>".encode()
        return _ATOM_HEAD + total + body + b"</feed>"

    # -- network ------------------------------------------------------------------------
    def get(self, url: str, headers: dict | None = None, **_kwargs) -> _Response:
        if self.offline:
            cached = self._from_cache(url)
            if cached is None:
                raise NetworkError("offline and not in the cache; run the command again with network (without --offline)")
            self.used_cache = True
            return _Response(200, cached)
        import requests

        for attempt in range(self.policy.retries + 1):
            try:
                with _polite(self.cache_dir, self.policy.min_interval):
                    response = requests.get(url, headers=headers, timeout=self.policy.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                cached = self._from_cache(url)
                if cached is not None:
                    self.used_cache = True
                    return _Response(200, cached)
                reason = "timed out" if isinstance(exc, requests.Timeout) else "cannot connect"
                host = urlsplit(url).netloc
                raise NetworkError(f"arXiv ({host}) {reason} and nothing is cached for this request; check the network or use --offline") from None
            if response.status_code in (429, 503) and attempt < self.policy.retries:
                retry_after = response.headers.get("Retry-After", "")
                delay = float(retry_after) if retry_after.isdigit() else self.policy.backoff * 2**attempt
                time.sleep(min(delay, self.policy.backoff_cap))
                continue
            if response.status_code == 200:
                self._store(url, response.content)
            return _Response(response.status_code, response.content)
        raise NetworkError("arXiv kept answering 'busy'; try again later")  # pragma: no cover - loop returns


def _write_bytes(path: Path, content: bytes) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_bytes(content)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise os_error(exc, path) from None


class _polite:
    """Hold the machine-wide arXiv lock and keep ``min_interval`` seconds between requests."""

    def __init__(self, cache_dir: Path, min_interval: float) -> None:
        self.lock_path = cache_dir / "requests.lock"
        self.min_interval = min_interval

    def __enter__(self):
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.lock_path.open("a+")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        self.handle.seek(0)
        text = self.handle.read().strip()
        last = float(text) if text else 0.0
        wait = last + self.min_interval - time.time()
        if wait > 0:
            time.sleep(wait)
        return self

    def __exit__(self, *exc):
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"{time.time():.3f}")
        self.handle.flush()
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        return False


class Arxiv:
    """Look papers up on arXiv's query API (by id, by title, or any ``search_query``).

    kb builds the query URL from the API's documented parameters (``id_list``, ``search_query``,
    ``start``, ``max_results``, ``sortBy``, ``sortOrder``) and reads the Atom answer itself: the
    ``arxiv`` package offers no way to hand it kb's session (limiter, cache, backoff) short of
    setting its private attributes, and the parsing it would add is a dozen fields.
    """

    def __init__(self, api: str, cache_dir: Path, *, offline: bool = False, policy: Policy | None = None) -> None:
        self.api = api.rstrip("?")
        self.session = Session(cache_dir, offline=offline, policy=policy or Policy())

    def query(self, *, search_query: str = "", id_list: Iterable[str] = (), max_results: int = BATCH,
              sort_by: str = "relevance", descending: bool = True) -> list[Metadata]:
        """Every entry of one query, page by page (``BATCH`` a page), up to ``max_results``."""
        if sort_by not in SORTS:
            raise ValueError(f"sort_by {sort_by!r}: one of {SORTS}")
        ids = ",".join(id_list)
        found: list[Metadata] = []
        while len(found) < max_results:
            page = min(BATCH, max_results - len(found))
            params = {"search_query": search_query, "id_list": ids, "sortBy": sort_by,
                      "sortOrder": "descending" if descending else "ascending",
                      "start": len(found), "max_results": page}
            response = self.session.get(f"{self.api}?{urlencode(params)}")
            if response.status_code != 200:
                raise NetworkError(f"arXiv answered HTTP {response.status_code}; try again later")
            entries = parse_atom(response.content)
            found += [m for m in entries if m is not None]
            if len(entries) < page:
                break
        return found

    def by_ids(self, ids: Iterable[PaperId]) -> dict[str, Metadata]:
        """Metadata by key for every id arXiv knows; unknown ids are simply absent."""
        keys = list(dict.fromkeys(pid.key for pid in ids if pid.is_arxiv))
        found: dict[str, Metadata] = {}
        for start in range(0, len(keys), BATCH):
            batch = keys[start : start + BATCH]
            for meta in self.query(id_list=batch, max_results=len(batch)):
                if meta.key in batch:
                    found[meta.key] = meta
        return found

    def by_title(self, title: str, *, max_results: int = 5) -> list[Metadata]:
        words = [w for w in "".join(c if c.isalnum() else " " for c in title).split() if len(w) > 1]
        if not words:
            return []
        return self.query(search_query=" AND ".join(f"ti:{w}" for w in words[:12]), max_results=max_results)


def parse_atom(content: bytes) -> list[Metadata | None]:
    """The entries of one Atom answer (None for arXiv's error entries, e.g. a malformed id).

    Raises:
        NetworkError: the answer is not XML (a proxy's error page, a feed cut off).
    """
    return [to_metadata(entry) for entry in read_xml(content).iterfind(f"{ATOM}entry")]


def read_xml(content: bytes):
    """The root element of an answer; an unreadable one is an error, never an empty answer."""
    from lxml import etree

    try:
        return etree.fromstring(content)
    except etree.XMLSyntaxError as exc:
        raise NetworkError(f"arXiv returned a response that could not be read ({exc}); "
                           "nothing was changed; try again later") from None


def _text(entry, tag: str) -> str | None:
    value = entry.findtext(tag)
    return " ".join(value.split()) if value and value.strip() else None


def _when(entry, tag: str) -> datetime | None:
    value = _text(entry, tag)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def to_metadata(entry) -> Metadata | None:
    """One Atom ``<entry>`` (an lxml element) as kb's metadata."""
    try:
        pid = parse_id(entry.findtext(f"{ATOM}id") or "")
    except KBError:
        return None  # arXiv's error entries (bad id) carry no paper id
    title = _text(entry, f"{ATOM}title")
    if not title or title.lower() == "error":
        return None
    primary = entry.find(f"{ARXIV}primary_category")
    return Metadata(
        key=pid.key,
        version=pid.version,
        title=title,
        authors=[" ".join(a.split()) for a in entry.xpath("a:author/a:name/text()", namespaces={"a": ATOM[1:-1]})],
        abstract=_text(entry, f"{ATOM}summary") or "",
        categories=[c.get("term") for c in entry.iterfind(f"{ATOM}category") if c.get("term")],
        primary_category=primary.get("term") if primary is not None else None,
        published=_when(entry, f"{ATOM}published"),
        updated=_when(entry, f"{ATOM}updated"),
        doi=_text(entry, f"{ARXIV}doi"),
        journal_ref=_text(entry, f"{ARXIV}journal_ref"),
        comment=_text(entry, f"{ARXIV}comment"),
        links=[link.get("href") for link in entry.iterfind(f"{ATOM}link") if link.get("href")],
    )
