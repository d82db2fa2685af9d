"""The run folder: where a run's whole record lives first; the catalog's rows are an index of it.

``KB_HOME/runs/<run id>/`` holds:

- ``record.json``: the run's record, written atomically when the run starts, again when it ends
  (succeeded, failed or interrupted), when a dead run is marked failed and when a regression flags
  it. The same document as an exported run (``kb runs export``, ``papers/<slug>/runs/<id>.json``)
  without its metrics, which stay in ``metrics.csv``::

      {"format": "kb-run/2", "run": {...}}

  ``run`` has one key per column of the catalog's ``run`` table (kb/models.py ``RunRecord``):

  - ``id``: the run id, also the folder's name (``<runner>-<yyyymmdd-hhmmss>-<4 hex>``).
  - ``runner``, ``paper_key``: the runner's name and its paper's key (``1506.02640``).
  - ``preset``, ``config``: the preset named and the whole resolved config (every field).
  - ``kind``: ``train``, or ``architecture`` for ``--architecture-only`` (no data);
    ``overrides``: the fields ``--set`` changed, with their values (both absent in older files).
  - ``status``: ``running``, ``succeeded``, ``failed`` or ``interrupted``; ``error``: why it
    failed or how to resume it.
  - ``created``, ``started``, ``ended``: ISO 8601 times (``ended`` is null while running).
  - ``resumed``: how many times the run was resumed; ``info.earlier_segments`` describes each
    segment before a resume (commit, device, host, torch).
  - ``git_commit``, ``git_dirty``, ``env`` (python, torch, numpy, cuda, cudnn, device_name, host,
    kb, platform, torch_threads), ``device``, ``host``, ``seed``: what ran it, where.
  - ``dataset``, ``dataset_fingerprint``, ``dataset_synthetic``: the data the verdicts depend
    on; with ``config``, ``final`` and ``device`` these are the verdict's inputs.
  - ``final``: the final metrics (name -> number); ``epochs``: one dict of metrics per epoch;
    ``throughput``: samples per second.
  - ``verdicts``: the claims judged at the end (``kb sync`` judges them again from the claims).
  - ``info``: what the runner recorded (``data_dir``, ``pid``, ``dataset_detail``, ``regression``).
  - ``run_dir``: the folder's path when written (a rebuild takes the folder's real path).
  - ``job_id``: the job that ran it, if a worker did (only in the run folder, never exported).

- ``regression.json``: present when the run is a regression (kb/runs/regression.py): the
  ``regression`` table's row without its id (``baseline_id``, ``runner``, ``preset``,
  ``job_id``, ``findings``, ``differences``, ``created``, ``notified``, ``notify_error``). An
  exported run carries the same object under the key ``regression``.
- ``metrics.csv``: every logged metric, one row each: ``kind`` (step | epoch), ``step``,
  ``epoch``, ``name``, ``value``; a step logged twice (a resume after a crash) keeps its last value.
- ``config.json``, ``env.json``, ``final.json``, ``log``, ``checkpoints/``: for people and for
  resuming; nothing is read back from them into the catalog.

``kb sync`` and ``kb runs import`` read run folders and exported files alike (``read_run``).
"""

import csv
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kb.errors import BadInput
from kb.files import write_atomic
from kb.models import Regression, RunRecord

FORMAT = "kb-run/2"
_FORMATS = ("kb-run/1", FORMAT)
RECORD = "record.json"
REGRESSION = "regression.json"
_DATES = ("created", "started", "ended")


@dataclass
class RunFile:
    """One run as a file holds it: the record, its metric rows and its regression (if any)."""

    record: RunRecord
    metrics: list[dict[str, Any]]
    regression: Regression | None
    source: Path

    def completeness(self) -> tuple:
        """Orders two copies of one run (a run folder, an export): the more finished and newer wins.

        Ended beats still running, then the later end (or start), then more resumes, more
        metric rows (an export's thinned curve loses to the folder's full one), then a folder.
        """
        record = self.record
        moment = record.ended or record.started or record.created
        return (record.ended is not None, _naive(moment), record.resumed, len(self.metrics), self.source.is_dir())


def _naive(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min
    return moment.replace(tzinfo=None) - (moment.utcoffset() or timedelta(0))


def run_fields(record: RunRecord) -> dict[str, Any]:
    """The record as JSON values (times as ISO 8601)."""
    data = record.model_dump()
    for key in _DATES:
        data[key] = data[key].isoformat() if data[key] else None
    return data


def regression_fields(regression: Regression) -> dict[str, Any]:
    data = regression.model_dump(exclude={"id", "run_id"})
    data["created"] = regression.created.isoformat()
    return data


def document(record: RunRecord) -> dict[str, Any]:
    return {"format": FORMAT, "run": run_fields(record)}


def write_record(record: RunRecord) -> None:
    """Write ``record.json`` into the run's folder (atomically: a reader sees the old or the new)."""
    _write_into(Path(record.run_dir), RECORD, document(record))


def write_regression(regression: Regression, run_dir: Path | str) -> None:
    _write_into(Path(run_dir), REGRESSION, regression_fields(regression))


def _write_into(run_dir: Path, name: str, data: dict[str, Any]) -> None:
    # A run whose folder is not on this machine (imported from another, or deleted by hand) has
    # nowhere to write; its record stays where it came from.
    if run_dir.is_dir():
        write_atomic(run_dir / name, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def load_metrics(run_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """metrics.csv -> rows of the metric table; a step logged twice (a resume after a crash)
    keeps its last value. Plain rows, not ``Metric`` objects: a long run has 10^5 of them, and
    ``kb.runs.records.insert_metrics`` writes them in one statement."""
    path = run_dir / "metrics.csv"
    if not path.exists():
        return []
    rows: dict[tuple[str, int, str], dict[str, Any]] = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                step, value = int(row["step"]), float(row["value"])
            except (TypeError, ValueError):
                continue  # a line cut short by a kill
            epoch = int(row["epoch"]) if row.get("epoch") not in (None, "") else None
            rows[(row["kind"], step if row["kind"] == "step" else (epoch or 0), row["name"])] = _metric(
                run_id, row["kind"], step, epoch, row["name"], value)
    return list(rows.values())


def _metric(run_id: str, kind: str, step: int, epoch: int | None, name: str, value: float) -> dict[str, Any]:
    return {"run_id": run_id, "kind": kind, "step": step, "epoch": epoch, "name": name, "value": value}


def parse(data: Any, where: str) -> tuple[RunRecord, list[dict[str, Any]], Regression | None]:
    """A run document (an export, or a folder's record.json) -> its record, metrics and regression."""
    if not isinstance(data, dict) or data.get("format") not in _FORMATS or not isinstance(data.get("run"), dict):
        raise BadInput(f"{where}: not a kb run file (expected format {FORMAT})")
    fields = dict(data["run"])
    metrics = data.get("metrics", fields.pop("metrics", []))   # kb-run/1 kept them inside "run"
    fields.pop("metrics", None)
    try:
        for key in _DATES:
            fields[key] = datetime.fromisoformat(fields[key]) if fields.get(key) else None
        record = RunRecord.model_validate(fields)
        rows = [_metric(record.id, k, int(s), e, n, float(v)) for k, s, e, n, v in metrics]
        regression = _regression(data.get("regression"), record.id)
    except (TypeError, ValueError, KeyError) as exc:
        raise BadInput(f"{where}: malformed run record ({exc})") from None
    if not record.id or not record.runner:
        raise BadInput(f"{where}: run record without id or runner")
    return record, rows, regression


def _regression(fields: Any, run_id: str) -> Regression | None:
    if fields is None:
        return None
    if not isinstance(fields, dict):
        raise TypeError("regression is not an object")
    fields = {**fields, "run_id": run_id}
    fields.pop("id", None)
    fields["created"] = datetime.fromisoformat(fields["created"])
    return Regression.model_validate(fields)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: cannot read run file ({exc})") from None


def read_run(path: Path, *, metrics: bool = True) -> RunFile:
    """A run from an exported file or from a run folder (its record.json, metrics.csv, regression.json).

    ``metrics=False`` leaves a folder's metrics.csv unread (10^5 rows for a long run): enough to
    check the record and decide whether the run is needed.

    Raises:
        BadInput: the file is unreadable, not JSON, or not a kb run record; the message names it.
    """
    if not path.is_dir():
        record, rows, regression = parse(_read_json(path), str(path))
        return RunFile(record, rows, regression, path)
    record, _, _ = parse(_read_json(path / RECORD), str(path / RECORD))
    if record.id != path.name:
        raise BadInput(f"{path / RECORD}: holds run {record.id}, not the folder's {path.name}")
    record.run_dir = str(path)       # the folder as it is now, wherever KB_HOME has moved
    regression = None
    if (path / REGRESSION).exists():
        try:
            regression = _regression(_read_json(path / REGRESSION), record.id)
        except (TypeError, ValueError, KeyError) as exc:
            raise BadInput(f"{path / REGRESSION}: malformed regression ({exc})") from None
    return RunFile(record, load_metrics(path, record.id) if metrics else [], regression, path)


def is_run_folder(path: Path) -> bool:
    return (path / RECORD).is_file()
