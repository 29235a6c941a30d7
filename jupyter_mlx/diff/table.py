"""Many runs at once: parameters, metrics, artifacts (their short SHA-256: the same file is the
same hash) and the objects of the state captured for their functions (the same) as columns, a row
per run, and charts across them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..store.records import iso

if TYPE_CHECKING:
    from ..metrics import Metric
    from ..store.records import RunRecord

RUN_COLUMNS = ("ref", "version", "status", "started_at", "duration", "sweep_id", "user")


@dataclass
class RunsTable:
    """Runs (newest first) with the union of their parameters and metrics as columns."""

    runs: list["RunRecord"]
    parameters: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    # run id -> {artifact path: SHA-256}: which runs wrote the same file (the same model, predictions)
    artifact_hashes: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, runs: list["RunRecord"], artifact_hashes: dict[str, dict[str, str]] | None = None) -> "RunsTable":
        parameters: dict[str, None] = {}
        metrics: dict[str, None] = {}
        for run in runs:
            parameters.update(dict.fromkeys(run.parameters))
            metrics.update(dict.fromkeys(run.metrics))
        return cls(runs, list(parameters), list(metrics), dict(artifact_hashes or {}))

    @property
    def artifacts(self) -> list[str]:
        """The paths any of the runs wrote, in path order."""
        return sorted({path for hashes in self.artifact_hashes.values() for path in hashes})

    def varying_artifacts(self) -> list[str]:
        """Artifacts whose content (or presence) differs between the runs."""
        return [path for path in self.artifacts
                if len({self.artifact_hashes.get(run.id, {}).get(path) for run in self.runs}) > 1]

    def _artifact_cells(self, run: "RunRecord") -> dict[str, str | None]:
        """The short SHA-256 of each artifact the run wrote (None: it did not write it)."""
        hashes = self.artifact_hashes.get(run.id, {})
        return {path: hashes[path][:12] if path in hashes else None for path in self.artifacts}

    @property
    def state(self) -> list[str]:
        """The names in any run's captured state, sorted."""
        return sorted({name for run in self.runs for name in _run_state(run)})

    def varying_state(self) -> list[str]:
        """Names of the captured state that differ between the runs that captured it (a run that
        captured nothing is not compared, as a pair of runs says "not captured")."""
        captured = [_run_state(run) for run in self.runs if _has_state(run)]
        return [name for name in self.state if len({cells.get(name) for cells in captured}) > 1]

    def _state_cells(self, run: "RunRecord") -> dict[str, str | None]:
        """Each name's short SHA-256, ``module NAME`` or ``not capturable`` (None: not in the run's state)."""
        cells = _run_state(run)
        return {name: cells.get(name) for name in self.state}

    def varying(self) -> list[str]:
        """Parameters whose value differs between the runs: what the runs are an experiment over."""
        return [name for name in self.parameters
                if len({repr(run.parameters.get(name)) for run in self.runs}) > 1]

    def rows(self) -> list[dict[str, Any]]:
        return [{
            "ref": run.ref,
            "version": run.version,
            "status": run.status,
            "started_at": iso(run.started_at),
            "duration": run.duration,
            "sweep_id": run.sweep_id,
            "user": _user(run),
            "parameters": {name: run.parameters.get(name) for name in self.parameters},
            "metrics": {name: run.metrics.get(name) for name in self.metrics},
            "artifacts": self._artifact_cells(run),
            "state": self._state_cells(run),
        } for run in self.runs]

    def to_json(self) -> dict[str, Any]:
        return {"parameters": self.parameters, "metrics": self.metrics, "varying": self.varying(),
                "artifacts": self.artifacts, "varying_artifacts": self.varying_artifacts(),
                "state": self.state, "varying_state": self.varying_state(), "rows": self.rows()}

    def frame(self) -> Any:
        """A pandas DataFrame indexed by run (``train.ipynb@v3``): run columns, then parameters, then
        metrics (a parameter and a metric of the same name: the metric's column is ``metric:NAME``; a
        parameter named as a run column, ``user`` say: ``param:NAME``)."""
        import pandas as pd

        records = []
        for run in self.runs:
            record: dict[str, Any] = {
                "ref": run.ref, "version": run.version, "status": run.status,
                "started_at": pd.Timestamp(run.started_at, unit="s", tz="UTC") if run.started_at else pd.NaT,
                "duration": run.duration, "sweep_id": run.sweep_id, "user": _user(run),
            }
            record.update({self._parameter_column(name): run.parameters.get(name) for name in self.parameters})
            record.update({self._metric_column(name): run.metrics.get(name) for name in self.metrics})
            record.update({f"artifact:{path}": value for path, value in self._artifact_cells(run).items()})
            record.update({f"state:{name}": value for name, value in self._state_cells(run).items()})
            records.append(record)
        columns = [*RUN_COLUMNS, *map(self._parameter_column, self.parameters), *map(self._metric_column, self.metrics),
                   *(f"artifact:{path}" for path in self.artifacts), *(f"state:{name}" for name in self.state)]
        frame = pd.DataFrame.from_records(records, columns=columns).set_index("ref")
        frame = frame.infer_objects()
        for name in self.metrics:
            frame[self._metric_column(name)] = pd.to_numeric(frame[self._metric_column(name)], errors="coerce")
        frame["duration"] = pd.to_numeric(frame["duration"], errors="coerce")
        return frame

    def _metric_column(self, name: str) -> str:
        return f"metric:{name}" if name in self.parameters or name in RUN_COLUMNS else name

    @staticmethod
    def _parameter_column(name: str) -> str:
        return f"param:{name}" if name in RUN_COLUMNS else name

    def plot(self, metric: str, by: str | None = None) -> Any:
        """A matplotlib Figure of ``metric`` against the parameter ``by`` (default: the first
        varying parameter; a bar per run when nothing varies)."""
        from matplotlib.figure import Figure

        if metric not in self.metrics:
            from ..errors import MLXError

            raise MLXError("not_found", f"no run here logged the metric {metric!r}; logged: {', '.join(self.metrics) or 'none'}")
        by = by or next(iter(self.varying()), None)
        if by is not None and by not in self.parameters:
            from ..errors import MLXError

            raise MLXError("invalid_request", f"{by!r} is not a parameter of these runs: {', '.join(self.parameters)}")
        points = [(run.parameters.get(by) if by else run.ref, run.metrics[metric], run)
                  for run in self.runs if metric in run.metrics]
        figure = Figure(figsize=(6, 3.5), dpi=100, layout="constrained")
        axes = figure.add_subplot()
        numeric = by is not None and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x, _, _ in points)
        if numeric:
            points.sort(key=lambda p: p[0])
            axes.plot([p[0] for p in points], [p[1] for p in points], "o-")
            if len({p[0] for p in points}) > 2 and min(p[0] for p in points) > 0 and \
                    max(p[0] for p in points) / min(p[0] for p in points) >= 100:
                axes.set_xscale("log")
        else:
            labels = [str(p[0]) for p in points]
            axes.bar(range(len(points)), [p[1] for p in points])
            axes.set_xticks(range(len(points)), labels, rotation=45 if len(labels) > 6 else 0, ha="right")
        axes.set_xlabel(by or "run")
        axes.set_ylabel(metric)
        axes.set_title(f"{metric} by {by}" if by else metric)
        axes.grid(alpha=0.3)
        return figure


def _user(run: "RunRecord") -> str | None:
    """Who asked for the run (None: recorded before users were, or a server's JSON without it)."""
    return getattr(run, "user", None)


def _has_state(run: "RunRecord") -> bool:
    from .state import entries

    return entries(getattr(run, "state", None)) is not None


def _run_state(run: "RunRecord") -> dict[str, str]:
    """A run's captured state as table cells: a name's short SHA-256, ``module NAME`` or ``not capturable``."""
    from .state import entries

    cells = {}
    for name, entry in (entries(getattr(run, "state", None)) or {}).items():
        if "not_capturable" in entry:
            cells[name] = "not capturable"
        elif entry["kind"] == "module":
            cells[name] = f"module {entry['module']}"
        else:
            cells[name] = (entry["sha256"] or "")[:12]
    return cells


def plot_series(metric: str, histories: dict[str, list["Metric"]]) -> Any:
    """A matplotlib Figure of the metric's logged series, one line per run (``{ref: history}``)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for ref, history in histories.items():
        values = [m for m in history if m.name == metric]
        if values:
            steps = [m.step if m.step is not None else i for i, m in enumerate(values)]
            axes.plot(steps, [m.value for m in values], label=ref, marker="o" if len(values) <= 30 else None)
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize="small")
    return figure
