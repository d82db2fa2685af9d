"""The one module that talks to arXiv (design.md, arXiv access).

The ``arxiv`` package builds queries and parses the Atom answers; kb gives it a session that adds
what it lacks: a timeout, one polite limiter shared by every kb process on the machine (a lock
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
from urllib.parse import parse_qs, urlsplit

from kb.errors import KBError, NetworkError, os_error
from kb.ids import PaperId, parse_id

BATCH = 100          # the arxiv package stops at page_size results; never ask for more ids at once
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
    """The slice of ``requests.Response`` the arxiv package reads."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content


class Session:
    """A stand-in for ``requests.Session`` given to ``arxiv.Client``."""

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
        error, not an empty result (the arxiv package would read it as "no such paper")."""
        from lxml import etree

        try:
            root = etree.fromstring(content)
        except etree.XMLSyntaxError as exc:
            raise NetworkError(f"arXiv returned a response that could not be read ({exc}); "
                               "nothing was changed; try again later") from None
        _write_bytes(self._raw_path(url), content)
        for entry in root.iterfind("{http://www.w3.org/2005/Atom}entry"):
            entry_id = entry.findtext("{http://www.w3.org/2005/Atom}id") or ""
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
    """Look papers up on arXiv by id or title."""

    def __init__(self, api: str, cache_dir: Path, *, offline: bool = False, policy: Policy | None = None) -> None:
        import arxiv

        self.session = Session(cache_dir, offline=offline, policy=policy or Policy())
        self.client = arxiv.Client(page_size=BATCH, delay_seconds=0, num_retries=0)
        self.client._session = self.session  # the package reads pages through this object only
        self.client.query_url_format = api.rstrip("?") + "?{}"
        self._arxiv = arxiv

    def _results(self, search) -> list:
        try:
            return list(self.client.results(search))
        except self._arxiv.HTTPError as exc:
            raise NetworkError(f"arXiv answered HTTP {exc.status}; try again later") from None
        except self._arxiv.UnexpectedEmptyPageError:
            raise NetworkError("arXiv returned an empty page; try again later") from None

    def by_ids(self, ids: Iterable[PaperId]) -> dict[str, Metadata]:
        """Metadata by key for every id arXiv knows; unknown ids are simply absent."""
        keys = list(dict.fromkeys(pid.key for pid in ids if pid.is_arxiv))
        found: dict[str, Metadata] = {}
        for start in range(0, len(keys), BATCH):
            batch = keys[start : start + BATCH]
            search = self._arxiv.Search(id_list=batch, max_results=len(batch))
            for result in self._results(search):
                meta = to_metadata(result)
                if meta is not None and meta.key in batch:
                    found[meta.key] = meta
        return found

    def by_title(self, title: str, *, max_results: int = 5) -> list[Metadata]:
        words = [w for w in "".join(c if c.isalnum() else " " for c in title).split() if len(w) > 1]
        if not words:
            return []
        query = " AND ".join(f"ti:{w}" for w in words[:12])
        search = self._arxiv.Search(query=query, max_results=max_results)
        return [m for m in (to_metadata(r) for r in self._results(search)) if m is not None]


def to_metadata(result) -> Metadata | None:
    try:
        pid = parse_id(result.entry_id)
    except KBError:
        return None  # arXiv's error entries (bad id) carry no paper id
    if not result.title or result.title.strip().lower() == "error":
        return None
    return Metadata(
        key=pid.key,
        version=pid.version,
        title=" ".join(result.title.split()),
        authors=[a.name for a in result.authors],
        abstract=" ".join(result.summary.split()),
        categories=list(result.categories),
        primary_category=result.primary_category or None,
        published=result.published,
        updated=result.updated,
        doi=result.doi or None,
        journal_ref=result.journal_ref or None,
        comment=result.comment or None,
        links=[link.href for link in result.links],
    )
