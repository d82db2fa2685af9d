"""Papers whose arXiv version moved past the version their notes and claims were written for.

``kb refresh`` notes the version a paper's notes and claims held for when it sees arXiv move past it;
the flag ("notes written for v2, arXiv has v5") shows in ``kb show``, ``kb list --json`` and the
site until ``kb refresh --ack PAPER``. The flags are kept in ``KB_HOME/feed/versions.json``
(key -> version written for), so a rebuilt catalog gets them back (``kb sync``).
"""

import json

from sqlmodel import Session, delete, select

from kb.errors import BadInput
from kb.files import write_atomic
from kb.models import NotesVersion, Paper
from kb.settings import Settings


def _path(settings: Settings):
    return settings.home / "feed" / "versions.json"


def read_versions(settings: Settings) -> dict[str, int]:
    path = _path(settings)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise BadInput(f"{path} is not JSON; fix it (key: version) or remove it") from None
    if not isinstance(data, dict) or not all(isinstance(v, int) for v in data.values()):
        raise BadInput(f"{path} must map paper ids to versions, e.g. {{\"1506.02640\": 2}}")
    return data


def write_versions(settings: Settings, versions: dict[str, int], *, session: Session) -> None:
    """The file first, then the catalog's copy."""
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(dict(sorted(versions.items())), indent=2) + "\n")
    reload_versions(settings, session=session)


def reload_versions(settings: Settings, *, session: Session) -> None:
    session.exec(delete(NotesVersion))
    for key, version in read_versions(settings).items():
        session.add(NotesVersion(key=key, written_for=version))
    session.flush()


def version_flags(*, session: Session) -> dict[str, str]:
    """Paper key -> "notes written for v2, arXiv has v5", for each paper not yet acknowledged."""
    rows = session.exec(select(Paper.key, Paper.version, NotesVersion.written_for)
                        .join(NotesVersion, NotesVersion.key == Paper.key))
    return {key: f"notes written for v{written}, arXiv has v{version}"
            for key, version, written in rows if version and version > written}


def acknowledge(settings: Settings, keys: list[str], *, session: Session) -> list[str]:
    """The notes hold for the current version again; returns the keys that were flagged."""
    versions = read_versions(settings)
    cleared = [k for k in keys if k in versions]
    for key in cleared:
        del versions[key]
    write_versions(settings, versions, session=session)
    return cleared
