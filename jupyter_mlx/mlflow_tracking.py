"""Runs logged to an MLflow tracking server: ``jupyter mlx mlflow-export``, and every finished run
in the background when ``c.MLXConfig.mlflow_tracking_uri`` is set.

One jupyter_mlx run is one MLflow run, named by its ref (``train.ipynb@v3``), in the experiment
``--experiment`` / ``c.MLXConfig.mlflow_experiment`` names, else the notebook's path (one
experiment per notebook): its parameters (their effective values), every logged metric value
with its step (a value logged without a step: its position among them), tags (``mlx.run_id``,
``mlx.ref``, git commit and dirty, user, sweep), its start and end times and status, and as
artifacts the executed notebook and the comparison report with the notebook's previous finished
run (the highest version below it that is final; none for v1).

Idempotent: the MLflow run id is kept on our run (``RunRecord.exports["mlflow"][uri]``), and the
MLflow run is tagged ``mlx.run_id``, so a lost mapping is found again by ``search_runs``. The
tag ``mlx.export = complete`` is set last: an MLflow run without it is an export interrupted
midway, deleted and logged again, never duplicated.

mlflow is imported only when an export happens (it is slow to import), through the client API
(``MlflowClient``), never the fluent one (process-global state, not thread-safe).
"""
from __future__ import annotations

import json
import logging
import queue
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .errors import MLXError
from .refs import names_a_run
from .store.base import MAX_PAGE
from .store.records import FINAL_STATUSES, RunRecord

if TYPE_CHECKING:
    from .metrics import Metric
    from .service import RunService

log = logging.getLogger(__name__)

SYSTEM = "mlflow"  # the key of RunRecord.exports
MLFLOW_MISSING = "MLflow tracking needs mlflow: pip install 'jupyter_mlx[mlflow]'"
RUN_ID_TAG = "mlx.run_id"
COMPLETE_TAG = "mlx.export"  # = "complete", set last
MLFLOW_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED", "interrupted": "KILLED"}
PROBE_TIMEOUT = 5.0  # seconds: is anything answering at the tracking URI
RETRY_DELAYS = (2.0, 10.0, 30.0)  # background: seconds before each new attempt at an unreachable server
# MLflow's limits (mlflow/utils/validation.py): entries per request, value lengths
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000


class TrackingUnreachable(MLXError):
    """Nothing answers at the tracking URI (the background exporter tries again later)."""

    def __init__(self, message: str) -> None:
        super().__init__("backend_unavailable", message)


@dataclass(frozen=True)
class Exported:
    """What became of one run: ``exported`` (logged now), ``found`` (logged before), ``skipped``
    (not finished) or ``failed`` (``notes`` say why)."""

    run: RunRecord
    action: str
    mlflow_run_id: str | None = None
    experiment_id: str | None = None
    experiment: str | None = None
    url: str | None = None
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """What the command line prints: a line, and a line per note."""
        where = f"MLflow run {self.mlflow_run_id} in experiment {self.experiment!r}" + (
            f": {self.url}" if self.url else "")
        if self.action == "failed":
            return f"{self.run.ref} not exported: {'; '.join(self.notes)}"
        if self.action == "skipped":
            return f"{self.run.ref} skipped: it is {self.run.status} (only finished runs are exported)"
        line = f"{self.run.ref} -> {where}" if self.action == "exported" else f"{self.run.ref} already exported: {where}"
        return "\n".join([line, *(f"  note: {note}" for note in self.notes)])

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.run.ref, "id": self.run.id, "action": self.action, "mlflow_run_id": self.mlflow_run_id,
                "experiment_id": self.experiment_id, "experiment": self.experiment, "url": self.url,
                "notes": list(self.notes)}


# -- choosing runs ----------------------------------------------------------------------------
def select_runs(service: "RunService", target: str | None, sweep: str | None = None,
                base: Path | None = None) -> list[RunRecord]:
    """The runs a user names, oldest version first: ``NOTEBOOK`` (all its runs), ``NOTEBOOK@vN``
    or a run id (one), or a sweep id (its runs)."""
    if (target is None) == (sweep is None):
        raise MLXError("invalid_request", "name a notebook (all its runs), a run (NOTEBOOK@vN) or --sweep ID: one of them")
    if sweep is not None:
        return service.resolve_runs(sweep, base, kind="sweep")
    assert target is not None
    if names_a_run(target):
        return service.resolve_runs(target, base, kind="run")
    notebook = service.resolve_notebook(target, base)
    runs: list[RunRecord] = []
    while True:
        page = service.store.list_runs(notebook=notebook, limit=MAX_PAGE, offset=len(runs))
        runs += page.runs
        if len(runs) >= page.total or not page.runs:
            return sorted(runs, key=lambda r: r.version)


def previous_run(service: "RunService", run: RunRecord) -> RunRecord | None:
    """The notebook's previous finished run: the highest version below ``run``'s that is final."""
    if run.version <= 1:
        return None
    page = service.store.list_runs(notebook=run.notebook, sort="version", filter=f"version<{run.version}",
                                   limit=MAX_PAGE)
    return next((r for r in page.runs if r.status in FINAL_STATUSES), None)


# -- the tracking server ----------------------------------------------------------------------
def import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise MLXError("backend_unavailable", MLFLOW_MISSING) from None
    return mlflow


def shown_uri(uri: str) -> str:
    """The tracking URI without credentials (``https://user:secret@host`` -> ``https://host``): what
    messages say and what the run's ``exports`` are keyed by."""
    parts = urllib.parse.urlsplit(uri.strip())
    if parts.username is None and parts.password is None:
        return uri.strip().rstrip("/")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)).rstrip("/")


def check_reachable(uri: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Raise ``TrackingUnreachable`` when nothing answers HTTP at an http(s) tracking URI (any
    answer, even an error status, will do): at once, rather than after mlflow's own retries
    (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``: minutes). Other URIs (``file:``, ``sqlite:``,
    ``databricks``) are left to mlflow."""
    if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
        return
    try:
        with urllib.request.urlopen(uri, timeout=timeout) as answer:  # noqa: S310 (http(s) only)
            answer.read(1)
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnreachable(f"cannot reach the MLflow tracking server at {shown_uri(uri)}: {reason}") from None


class Tracking:
    """One tracking server, opened once for several exports: its client and experiments by name."""

    def __init__(self, uri: str, experiment: str | None = None) -> None:
        if not uri.strip():
            raise MLXError("invalid_request", "no MLflow tracking URI: give --tracking-uri URI "
                           "(or set c.MLXConfig.mlflow_tracking_uri)")
        import_mlflow()
        from mlflow.tracking import MlflowClient

        self.uri = uri.strip()
        self.key = shown_uri(self.uri)
        self.experiment = experiment or None
        check_reachable(self.uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self._experiments: dict[str, str] = {}

    def experiment_id(self, name: str) -> str:
        """The id of the experiment ``name``, created if there is none."""
        if name not in self._experiments:
            from mlflow.exceptions import MlflowException

            found = self.client.get_experiment_by_name(name)
            if found is None:
                try:
                    self._experiments[name] = self.client.create_experiment(name)
                except MlflowException as exc:  # made meanwhile by another exporter
                    found = self.client.get_experiment_by_name(name)
                    if found is None:
                        raise MLXError("backend_unavailable", f"MLflow at {self.key} refused to create experiment "
                                       f"{name!r}: {_message(exc)}") from None
            if found is not None:
                if found.lifecycle_stage == "deleted":
                    raise MLXError("conflict", f"experiment {name!r} was deleted in MLflow at {self.key}: restore it "
                                   f"(mlflow experiments restore --experiment-id {found.experiment_id}) or choose "
                                   "another with --experiment")
                self._experiments[name] = found.experiment_id
        return self._experiments[name]

    def url(self, experiment_id: str, run_id: str) -> str | None:
        if urllib.parse.urlsplit(self.key).scheme not in ("http", "https"):
            return None
        return f"{self.key}/#/experiments/{experiment_id}/runs/{run_id}"


# -- one run ----------------------------------------------------------------------------------
def export_run(service: "RunService", run: RunRecord, tracking: Tracking) -> Exported:
    """Log ``run`` to the tracking server once: a run logged before is found (by the id kept on
    our run, else by its ``mlx.run_id`` tag), an export interrupted midway is deleted and redone."""
    if run.status not in FINAL_STATUSES:
        return Exported(run, "skipped")
    check_reachable(tracking.uri)
    name = tracking.experiment or run.notebook
    experiment_id = tracking.experiment_id(name)
    found, incomplete = _earlier_exports(run, tracking, experiment_id)
    if found is not None:
        details = _details(tracking, found.info.experiment_id, found.info.run_id, name, ())
        kept = ((run.exports or {}).get(SYSTEM) or {}).get(tracking.key) or {}
        if kept.get("run_id") == found.info.run_id:  # (perhaps in another experiment)
            return _exported(run, "found", tracking, {**details, **kept})
        service.store.record_export(run.id, SYSTEM, tracking.key, details)  # the mapping was lost: keep it again
        return _exported(run, "found", tracking, details)
    for stale in incomplete:
        tracking.client.delete_run(stale)
    client = tracking.client
    created = client.create_run(experiment_id, start_time=_ms(run.started_at or run.queued_at), tags=_tags(run),
                                run_name=run.ref)
    mlflow_id = created.info.run_id
    notes = _log_values(client, mlflow_id, run, service.store.metric_history(run.id))
    notes += _log_artifacts(client, mlflow_id, service, run)
    _terminate(client, mlflow_id, MLFLOW_STATUS[run.status], _ms(run.finished_at or time.time()))
    client.set_tag(mlflow_id, COMPLETE_TAG, "complete")
    details = _details(tracking, experiment_id, mlflow_id, name, notes)
    service.store.record_export(run.id, SYSTEM, tracking.key, details)
    return _exported(run, "exported", tracking, details)


def _terminate(client: Any, mlflow_id: str, status: str, end_time: int) -> None:
    """``set_terminated`` without its two lines on stdout ("View run ... at"): they would be mixed into
    the command's output (``--json``) and the server's; redirecting stdout would hide every thread's."""
    from mlflow.entities import RunStatus

    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if hasattr(store, "update_run_info"):  # what set_terminated calls after printing
        store.update_run_info(mlflow_id, RunStatus.from_string(status), end_time, None)
    else:
        client.set_terminated(mlflow_id, status, end_time=end_time)


def _earlier_exports(run: RunRecord, tracking: Tracking, experiment_id: str) -> tuple[Any, list[str]]:
    """A complete earlier export of ``run`` (or None), and the incomplete ones (to delete)."""
    from mlflow.exceptions import MlflowException

    candidates = []
    kept = ((run.exports or {}).get(SYSTEM) or {}).get(tracking.key) or {}
    if kept.get("run_id"):
        try:
            candidates.append(tracking.client.get_run(kept["run_id"]))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
    candidates += tracking.client.search_runs([experiment_id], f"tags.`{RUN_ID_TAG}` = '{run.id}'", max_results=100)
    found, incomplete = None, []
    for candidate in candidates:
        if candidate.info.lifecycle_stage != "active" or candidate.data.tags.get(RUN_ID_TAG) != run.id:
            continue
        if candidate.data.tags.get(COMPLETE_TAG) == "complete":
            found = found or candidate
        elif candidate.info.run_id not in incomplete:
            incomplete.append(candidate.info.run_id)
    return found, incomplete


def _tags(run: RunRecord) -> dict[str, str]:
    tags = {
        RUN_ID_TAG: run.id,
        "mlx.ref": run.ref,
        "mlx.notebook": run.notebook,
        "mlx.version": str(run.version),
        "mlx.status": run.status,
        "mlx.backend": run.backend,
        "mlflow.source.name": run.notebook,
        "mlflow.source.type": "NOTEBOOK",
    }
    if run.git_commit:
        tags["mlflow.source.git.commit"] = run.git_commit
    if run.git_dirty is not None:
        tags["mlx.git_dirty"] = "true" if run.git_dirty else "false"
    if run.user:
        tags["mlflow.user"] = run.user
    if run.sweep_id:
        tags["mlx.sweep_id"] = run.sweep_id
    if run.parent_id:
        tags["mlx.parent_id"] = run.parent_id
    if run.tags:
        tags["mlx.tags"] = ", ".join(run.tags)
    if run.error is not None:
        tags["mlx.error"] = f"{run.error.ename}: {run.error.evalue}"
    return {key: value[:MAX_TAG_VALUE] for key, value in tags.items()}


def _log_values(client: Any, mlflow_id: str, run: RunRecord, history: list["Metric"]) -> list[str]:
    """Log the parameters and every metric value; a name MLflow refuses is left out, with a note."""
    from mlflow.entities import Metric as MlflowMetric
    from mlflow.entities import Param

    params = {name: [Param(name, _param_text(value))] for name, value in sorted(run.parameters.items())}
    notes = _log_by_name(client, mlflow_id, "parameter", params, MAX_PARAMS_PER_BATCH)
    timestamp = _ms(run.finished_at or time.time())
    series: dict[str, list[Any]] = {}
    stepless: dict[str, int] = {}  # values logged without a step so far, per name
    for metric in history:
        step = metric.step
        if step is None:
            step = stepless[metric.name] = stepless.get(metric.name, -1) + 1
        series.setdefault(metric.name, []).append(MlflowMetric(metric.name, metric.value, timestamp, step))
    for name, value in run.metrics.items():  # a summary without a history (recorded before histories were)
        series.setdefault(name, [MlflowMetric(name, value, timestamp, 0)])
    return notes + _log_by_name(client, mlflow_id, "metric", series, MAX_METRICS_PER_BATCH)


def _log_by_name(client: Any, mlflow_id: str, kind: str, entries: dict[str, list[Any]], limit: int) -> list[str]:
    """``log_batch`` the entries, whole names per request (up to ``limit`` entries); when MLflow
    refuses a request (it checks it whole before storing any of it), its names one by one."""
    notes: list[str] = []
    for names in _batches(entries, limit):
        try:
            _log_entries(client, mlflow_id, kind, [e for name in names for e in entries[name]], limit)
        except Exception as exc:
            if not _refused(exc):
                raise
            if len(names) == 1:
                notes.append(f"{kind} {names[0]!r} not logged: MLflow refused it ({_message(exc)})")
                continue
            notes += _log_by_name(client, mlflow_id, kind, {name: entries[name] for name in names}, 0)
    return notes


def _batches(entries: dict[str, list[Any]], limit: int) -> Iterable[list[str]]:
    """Names grouped so that a group holds at most ``limit`` entries (a larger name alone); 0: one each."""
    group: list[str] = []
    size = 0
    for name, values in entries.items():
        if group and (limit == 0 or size + len(values) > limit):
            yield group
            group, size = [], 0
        group.append(name)
        size += len(values)
    if group:
        yield group


def _log_entries(client: Any, mlflow_id: str, kind: str, entries: list[Any], limit: int) -> None:
    chunk = limit or (MAX_METRICS_PER_BATCH if kind == "metric" else MAX_PARAMS_PER_BATCH)
    for start in range(0, len(entries), chunk):
        part = entries[start:start + chunk]
        client.log_batch(mlflow_id, **{"metrics" if kind == "metric" else "params": part})


def _log_artifacts(client: Any, mlflow_id: str, service: "RunService", run: RunRecord) -> list[str]:
    """The executed notebook, and the comparison report with the previous finished run."""
    from .diff.report import write_report

    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlx-mlflow-") as folder:
        try:
            executed = service.store.executed_notebook(run.id)
        except MLXError as exc:
            return [f"no executed notebook: {exc.message}"]
        notebook = Path(folder) / Path(run.notebook).name
        notebook.write_text(json.dumps(executed, indent=1) + "\n", encoding="utf-8")
        client.log_artifact(mlflow_id, str(notebook))
        previous = previous_run(service, run)
        if previous is not None:
            report = Path(folder) / f"compare-v{previous.version}-v{run.version}.html"
            try:
                write_report(service.compare(previous.id, run.id), report)
            except MLXError as exc:
                notes.append(f"no comparison report with {previous.ref}: {exc.message}")
            else:
                client.log_artifact(mlflow_id, str(report))
    return notes


def _details(tracking: Tracking, experiment_id: str, mlflow_id: str, experiment: str,
             notes: Iterable[str]) -> dict[str, Any]:
    return {"run_id": mlflow_id, "experiment_id": experiment_id, "experiment": experiment,
            "url": tracking.url(experiment_id, mlflow_id), "at": time.time(), "notes": list(notes)}


def _exported(run: RunRecord, action: str, tracking: Tracking, details: dict[str, Any]) -> Exported:
    return Exported(run, action, details["run_id"], details["experiment_id"], details["experiment"],
                    details["url"], tuple(details.get("notes") or ()))


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text[:MAX_PARAM_VALUE]


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _refused(exc: Exception) -> bool:
    """MLflow said a value is invalid (a name it does not take), rather than failing."""
    return getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE"


def _message(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


# -- several runs (the command line) ----------------------------------------------------------
def export_runs(service: "RunService", runs: list[RunRecord], uri: str, experiment: str | None = None,
                report: Callable[[Exported], None] | None = None) -> list[Exported]:
    """Export ``runs`` one after the other; a run MLflow refuses is ``failed`` and the others go on,
    an unreachable server stops them all (``TrackingUnreachable``)."""
    tracking = Tracking(uri, experiment)  # mlflow is there, the server answers
    from mlflow.exceptions import MlflowException

    results = []
    for run in runs:
        try:
            result = export_run(service, run, tracking)
        except TrackingUnreachable:
            raise
        except (MLXError, MlflowException, OSError) as exc:
            result = Exported(run, "failed", notes=(_message(exc),))
        results.append(result)
        if report is not None:
            report(result)
    return results


def summary(results: list[Exported]) -> str:
    """``3 runs: 2 exported, 1 already exported``."""
    words = {"exported": "exported", "found": "already exported", "skipped": "skipped (not finished)",
             "failed": "not exported"}
    counts = [f"{sum(1 for r in results if r.action == action)} {word}" for action, word in words.items()
              if any(r.action == action for r in results)]
    return f"{len(results)} run{'s' if len(results) != 1 else ''}: {', '.join(counts) or 'none'}"


# -- every finished run, in the background ----------------------------------------------------
class BackgroundExporter:
    """Exports each finished run given to ``submit``, on one worker thread of its own: the run's
    path only queues its id. An unreachable server is tried again after each of ``retry_delays``,
    then the failure is logged (warning) and kept on the run (``exports["mlflow"][uri]["error"]``)."""

    def __init__(self, service: "RunService", uri: str, experiment: str | None = None,
                 retry_delays: tuple[float, ...] | None = None) -> None:
        self.service = service
        self.uri = uri
        self.experiment = experiment or None
        self.retry_delays = RETRY_DELAYS if retry_delays is None else retry_delays
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping = threading.Event()  # no more retries: close() was called
        self._tracking: Tracking | None = None

    def submit(self, run: RunRecord) -> None:
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="mlx-mlflow-export", daemon=True)
                self._thread.start()
        self._queue.put(run.id)

    def close(self, timeout: float = 15.0) -> None:
        """Export what is queued (no more retries), waiting at most ``timeout`` seconds."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stopping.set()
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("MLflow export to %s still running after %.0f s; left unfinished", shown_uri(self.uri), timeout)

    def _work(self) -> None:
        while True:
            run_id = self._queue.get()
            if run_id is None:
                return
            try:
                self._export(run_id)
            except Exception:  # never let one run stop the exports of the next
                log.exception("MLflow export of run %s failed", run_id)

    def _export(self, run_id: str) -> None:
        delays = iter(self.retry_delays)
        while True:
            try:
                run = self.service.store.get_run(run_id)
                if self._tracking is None:
                    self._tracking = Tracking(self.uri, self.experiment)
                result = export_run(self.service, run, self._tracking)
            except TrackingUnreachable as exc:
                delay = next(delays, None)
                if delay is not None and not self._stopping.wait(delay):
                    continue
                error = exc.message
            except Exception as exc:
                error = _message(exc)
            else:
                for note in result.notes:
                    log.info("MLflow export of %s: %s", result.run.ref, note)
                return
            self._fail(run_id, error)
            return

    def _fail(self, run_id: str, error: str) -> None:
        key = shown_uri(self.uri)
        log.warning("run %s was not exported to MLflow at %s: %s", run_id, key, error)
        try:
            run = self.service.store.get_run(run_id)
            if not (((run.exports or {}).get(SYSTEM) or {}).get(key) or {}).get("run_id"):  # keep a good mapping
                self.service.store.record_export(run_id, SYSTEM, key, {"error": error, "at": time.time()})
        except MLXError as exc:
            log.warning("the MLflow export failure of run %s could not be kept on it: %s", run_id, exc.message)
