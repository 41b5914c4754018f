"""Logs that survive a restart: the run log mirrored to a Hugging Face Dataset repo, and restored from it at start-up.

A Space's disk is wiped on every restart. With PLAYGROUND_HUB_DATASET=<owner/name> and a token (HF_TOKEN, a
write token set as a Space secret):

- start-up downloads the Dataset (`snapshot_download`) and imports every run not already in the log;
- from then on, `huggingface_hub.CommitScheduler` pushes a local mirror folder every few minutes and once more at
  shutdown. The folder is append-only, as the scheduler expects: `runs/<process>.jsonl` (one file per process, rows
  in the export format of `RunLog.export`) and `media/<artifact path>` (each image or audio file once).

A rating, a winner or an owner that changes after its run was mirrored is mirrored again as a later row of the same
run, and a comparison whose status changed (it finished, or ended partial) as a later row of its last run; the
restore takes the first row of a run for what it is, the last one for how it was judged, and the last row of a
comparison for its status (one still running when the Space stopped is restored as interrupted). A run is known
by what made it (time, model, prompt, seed, cell), which export and import keep, so importing the same Dataset twice
adds nothing the second time.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

from .store import RunLog
from .store.limits import ImportLimits
from .store.transfer import _jsonl
from .store.validate import derived_uid

logger = logging.getLogger(__name__)

RUNS_DIR, MEDIA_DIR = "runs", "media"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def process_file_name() -> str:
    """Sorts by start time, so a restore reads the processes in the order they ran; unique per process."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"


def run_identity(values) -> str:
    """The same run in any copy of the log: ids change on import, the run's uid does not."""
    return values.get("uid") if isinstance(values, dict) else values["uid"]


class LogMirror:
    """Appends what is new in the run log to this process's JSONL file, and copies its media beside it."""

    def __init__(self, log: RunLog, folder: Path, name: str | None = None):
        self.log = log
        self.folder = Path(folder)
        self.path = self.folder / RUNS_DIR / (name or process_file_name())
        self._last_run = 0
        self._last_rating = 0
        self._winners: dict[int, int] = {}
        self._owners: dict[int, str | None] = {}
        self._statuses: dict[int, str] = {}
        self._lock = threading.Lock()

    def skip_existing(self) -> None:
        """Mirror only what happens from now on (what the log holds now came from the Dataset, or was mirrored by
        the process that made it)."""
        with self._lock:
            self._last_run, self._last_rating = self._high_water()
            self._winners, self._owners, self._statuses = self._comparison_state()

    def sync(self) -> int:
        """Append rows for new runs and for runs whose rating, winner or owner changed; returns rows written."""
        with self._lock:
            last_run, last_rating = self._high_water()
            db = self.log._db()
            ids = {row[0] for row in db.execute("SELECT id FROM runs WHERE id > ? AND id <= ?",
                                                (self._last_run, last_run))}
            ids |= {row[0] for row in db.execute("SELECT run_id FROM ratings WHERE id > ? AND id <= ?",
                                                 (self._last_rating, last_rating))}
            winners, owners, statuses = self._comparison_state()
            for comparison_id in set(winners) | set(self._winners):
                if winners.get(comparison_id) != self._winners.get(comparison_id):   # old and new winner both
                    ids |= {i for i in (winners.get(comparison_id), self._winners.get(comparison_id)) if i}
            changed_owner = [c for c, owner in owners.items() if owner != self._owners.get(c, owner)]
            for comparison_id in changed_owner:
                ids |= {row[0] for row in db.execute("SELECT id FROM runs WHERE comparison_id = ?", (comparison_id,))}
            for comparison_id, status in statuses.items():     # finished since: its last run says so again
                if self._statuses.get(comparison_id, status) != status:
                    last = db.execute("SELECT max(id) FROM runs WHERE comparison_id = ?", (comparison_id,)).fetchone()
                    ids |= {last[0]} if last[0] is not None else set()
            rows = self._rows(sorted(ids), owners)
            if rows:
                self._copy_media(rows)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as handle:    # whole lines, then flushed: append-only
                    handle.write(_jsonl(rows))
                    handle.flush()
                    os.fsync(handle.fileno())
            self._last_run, self._last_rating = last_run, last_rating
            self._winners, self._owners, self._statuses = winners, owners, statuses
            return len(rows)

    def _high_water(self) -> tuple[int, int]:
        row = self.log._db().execute("SELECT (SELECT coalesce(max(id), 0) FROM runs), "
                                     "(SELECT coalesce(max(id), 0) FROM ratings)").fetchone()
        return row[0], row[1]

    def _comparison_state(self) -> tuple[dict[int, int], dict[int, str | None], dict[int, str]]:
        rows = self.log._db().execute("SELECT id, winner_run_id, owner, status FROM comparisons").fetchall()
        return {r[0]: r[1] for r in rows if r[1] is not None}, {r[0]: r[2] for r in rows}, {r[0]: r[3] for r in rows}

    def _rows(self, ids: list[int], owners: dict[int, str | None]) -> list[dict]:
        runs = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            runs += self.log._select_runs(f"r.id IN ({', '.join('?' for _ in chunk)})", chunk, limit=len(chunk),
                                          order="r.id")
        rows = self.log._export_rows(runs)
        mirrored_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")   # orders processes
        for row in rows:
            if isinstance(row.get("comparison"), dict):
                row["comparison"]["owner"] = owners.get(row["comparison_id"])
            row["mirrored_at"] = mirrored_at
        return rows

    def _copy_media(self, rows: list[dict]) -> None:
        for row in rows:
            artifact = row.get("artifact")
            source = self.log.artifact_path(RunRecordView(artifact)) if artifact else None
            if source is None or not source.is_file():
                continue
            target = self.folder / MEDIA_DIR / artifact
            if target.exists():                  # artifact names are unique: a file is copied once, never changed
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)


@dataclasses.dataclass
class RunRecordView:
    """Just enough of a record for RunLog.artifact_path, which checks the path stays inside the data dir."""
    artifact: str | None


@dataclasses.dataclass
class RestoreReport:
    imported: int = 0            # runs added to the log
    updated: int = 0             # runs already there whose rating, winner or owner was brought up to date
    skipped: int = 0             # rows of runs already in the log (later rows of a run, or a second restore)
    errors: list[str] = dataclasses.field(default_factory=list)


def restore_from_folder(log: RunLog, folder: Path, limits: ImportLimits | None = None) -> RestoreReport:
    """Import a mirror folder (a snapshot of the Dataset): each run once, judged as its last row says.

    Every field is held to `limits` (the Space's own; the defaults without settings), but not to the caps of an
    upload: the archive handed to the importer is built here, from the snapshot, and a mirror file grows past an
    upload's 200 MB or 20,000 rows as the Space is used."""
    folder = Path(folder)
    limits = dataclasses.replace(limits or ImportLimits(), max_bytes=_NO_CAP, max_member_bytes=_NO_CAP,
                                 max_expanded_bytes=_NO_CAP, max_members=_NO_CAP, max_rows=_NO_CAP)
    report = RestoreReport()
    groups: dict[str, list[tuple[int, dict]]] = {}          # run identity -> (file index, row)
    files = sorted((folder / RUNS_DIR).glob("*.jsonl"))
    for index, path in enumerate(files):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            report.errors.append(f"{path.name}: cannot read: {error}")
            continue
        for number, line in enumerate(text.split("\n"), start=1):   # not splitlines(): U+2028 may be in a prompt
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("a row must be a JSON object")
                missing = [name for name in ("created_at", "model_id", "prompt", "seed", "uid")
                           if row.get(name) is None]
                if missing:                  # without them a run has no identity: it could not be told apart
                    raise ValueError(f"not a run: no {', '.join(missing)}")
                groups.setdefault(run_identity(row), []).append((index, row))
            except (ValueError, TypeError) as error:
                report.errors.append(f"{path.name} line {number}: {error}")
    for rows in groups.values():                 # in the order they were mirrored, whichever process did it
        rows.sort(key=lambda entry: (str(entry[1].get("mirrored_at") or ""), entry[0]))
    existing = _identities(log)
    statuses = _last_statuses(groups)
    to_import: dict[int, list[dict]] = {}
    for identity, rows in groups.items():
        if identity in existing:
            report.skipped += len(rows)
            continue
        index, first = rows[0]
        merged = _judged_as_last(first, rows[-1][1])
        if _comparison_uid(merged) in statuses:
            merged["comparison"]["status"] = statuses[_comparison_uid(merged)]
        to_import.setdefault(index, []).append(merged)
        report.skipped += len(rows) - 1
    for index, rows in sorted(to_import.items()):
        result = _import_rows(log, rows, folder / MEDIA_DIR, files[index].name, limits)
        report.imported += result.imported
        report.errors += [f"{files[index].name}: {message}" for _, message in result.errors]
    now_there = _identities(log)
    owners: dict[int, str] = {}                  # comparison id -> owner its runs' last rows name
    for identity, rows in groups.items():
        if identity not in now_there:
            continue
        run = log.get_run(now_there[identity])
        last = rows[-1][1]
        owner = (last.get("comparison") or {}).get("owner") if isinstance(last.get("comparison"), dict) else None
        if run.comparison_id is not None and isinstance(owner, str) and owner:
            owners.setdefault(run.comparison_id, owner)
        if _bring_up_to_date(log, run, last) and identity in existing:
            report.updated += 1
    with log._write() as tx:                     # one transaction for the whole restore, not one per run
        report.updated += sum(tx.execute("UPDATE comparisons SET owner = ? WHERE id = ? AND owner IS NULL",
                                         (owner, comparison_id)).rowcount for comparison_id, owner in owners.items())
    return report


def _comparison_uid(row: dict) -> str | None:
    """The comparison a mirrored row belongs to, as the importer knows it (older rows carry no uid)."""
    comparison = row.get("comparison")
    if not isinstance(comparison, dict):
        return None
    return comparison.get("uid") or derived_uid("comparison", row.get("comparison_id"), comparison.get("title"),
                                                comparison.get("created_at"))


def _last_statuses(groups: dict[str, list[tuple[int, dict]]]) -> dict[str, str]:
    """Each comparison's status as its last mirrored row says; one still running when the process stopped (the
    Space restarted) is interrupted."""
    last: dict[str, tuple[tuple, str]] = {}
    for rows in groups.values():
        for index, row in rows:
            uid, status = _comparison_uid(row), (row.get("comparison") or {}).get("status")
            order = (str(row.get("mirrored_at") or ""), index)
            if uid is not None and isinstance(status, str) and (uid not in last or order >= last[uid][0]):
                last[uid] = (order, status)
    return {uid: "interrupted" if status == "running" else status for uid, (_, status) in last.items()}


def _identities(log: RunLog) -> dict[str, int]:
    rows = log._db().execute("SELECT id, uid FROM runs").fetchall()
    return {run_identity(row): row["id"] for row in rows}


def _is_winner(row: dict) -> bool:
    comparison = row.get("comparison")
    return isinstance(comparison, dict) and row.get("id") is not None and comparison.get("winner_run_id") == row["id"]


def _judged_as_last(first: dict, last: dict) -> dict:
    """The run as first mirrored (its comparison, its cell), with the rating and winner its last row records."""
    merged = json.loads(json.dumps(first))
    for name in ("stars", "thumbs", "note"):
        merged[name] = last.get(name)
    comparison = merged.get("comparison")
    if isinstance(comparison, dict):
        if _is_winner(last):
            comparison["winner_run_id"] = merged.get("id")
        elif comparison.get("winner_run_id") == merged.get("id"):
            comparison["winner_run_id"] = None
    return merged


_NO_CAP = 2**62


def _import_rows(log: RunLog, rows: list[dict], media: Path, name: str, limits: ImportLimits):
    """Through RunLog.import_jsonl: a zip of the rows and the media files they name, as an export would be."""
    media_root = media.resolve()
    with tempfile.TemporaryDirectory(prefix="playground-restore-") as scratch:
        archive_path = Path(scratch) / f"{Path(name).stem}.zip"
        with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("runs.jsonl", _jsonl(rows))
            added = set()
            for row in rows:
                artifact = row.get("artifact")
                if not isinstance(artifact, str) or artifact in added:
                    continue
                source = (media / artifact).resolve()
                if media_root in source.parents and source.is_file():   # never read outside the snapshot
                    archive.write(source, f"media/{artifact}")
                    added.add(artifact)
        return log.import_jsonl(archive_path, limits)


def _bring_up_to_date(log: RunLog, run, last: dict) -> bool:
    """Apply the rating and winner of a run's last row where the log differs; True if anything changed.
    (Owners are applied per comparison, in restore_from_folder.)"""
    changed = False
    run_id = run.id
    rating = {name: last.get(name) for name in ("stars", "thumbs", "note")}
    if any(v is not None for v in rating.values()) and rating != {n: getattr(run, n) for n in rating}:
        try:
            log.rate(run_id, **rating)
            changed = True
        except ValueError as error:
            logger.warning("run #%s: rating from the Dataset not applied: %s", run_id, error)
    if _is_winner(last) and run.comparison_id is not None \
            and log.get_comparison_header(run.comparison_id).winner_run_id != run_id:
        log.set_winner(run.comparison_id, run_id)
        changed = True
    return changed


# ---- wiring: the Hub at the edge ---------------------------------------------------------------------------------------

def _scheduler_class():
    from huggingface_hub import CommitScheduler

    class MirrorScheduler(CommitScheduler):
        """Writes what is new into the mirror folder, then lets CommitScheduler push the changed files."""

        def __init__(self, *, mirror: LogMirror, **kwargs):
            self.mirror = mirror
            super().__init__(**kwargs)

        def push_to_hub(self):
            try:
                self.mirror.sync()
            except Exception:                    # a bad moment in the log must not stop later pushes
                logger.exception("could not write the run-log mirror")
            return super().push_to_hub()

    return MirrorScheduler


def check_repo_id(repo_id: str) -> str:
    repo_id = (repo_id or "").strip()
    if not _REPO_ID.match(repo_id):
        raise ValueError(f"PLAYGROUND_HUB_DATASET={repo_id!r} must name a Dataset repo as owner/name, "
                         "for example your-name/prompt-playground-log")
    return repo_id


def start(settings, log: RunLog, *, token: str | None = None, download=None, scheduler_class=None):
    """Restore the log from the Dataset, then mirror it there; None (and nothing done) without a Dataset or token.

    `download` and `scheduler_class` default to huggingface_hub's snapshot_download and a CommitScheduler."""
    if not settings.hub_dataset:
        return None
    repo_id = check_repo_id(settings.hub_dataset)
    if token is None:
        from huggingface_hub import get_token

        token = get_token()                      # HF_TOKEN, or the token saved by `hf auth login`
    if not token:
        logger.warning("PLAYGROUND_HUB_DATASET is set but no token is: the run log is not mirrored "
                       "(add a write token as the HF_TOKEN secret)")
        return None
    if download is None:
        from huggingface_hub import snapshot_download as download
    snapshot = settings.data_dir / "hub-snapshot"
    try:
        download(repo_id=repo_id, repo_type="dataset", local_dir=snapshot, token=token,
                 allow_patterns=[f"{RUNS_DIR}/*.jsonl", f"{MEDIA_DIR}/**"])
        report = restore_from_folder(log, snapshot, ImportLimits.from_settings(settings))
        logger.info("restored from %s: %d runs added, %d brought up to date, %d rows already there, %d errors",
                    repo_id, report.imported, report.updated, report.skipped, len(report.errors))
    except Exception as error:                   # first start (no repo yet) or the Hub unreachable: start empty
        logger.warning("nothing restored from %s: %s", repo_id, type(error).__name__)
    mirror = LogMirror(log, settings.data_dir / "hub-mirror")
    mirror.skip_existing()
    scheduler = (scheduler_class or _scheduler_class())(
        mirror=mirror, repo_id=repo_id, repo_type="dataset", folder_path=mirror.folder, private=True,
        every=settings.hub_sync_every_min, token=token)
    _push_on_sigterm(scheduler)
    return scheduler


def _push_on_sigterm(scheduler) -> None:
    """Spaces stop a container with SIGTERM, which skips atexit: push once more, then stop as before."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        try:
            scheduler.trigger().result(timeout=120)
        except Exception:
            logger.exception("last push of the run-log mirror failed")
        if callable(previous):
            previous(signum, frame)
        else:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
