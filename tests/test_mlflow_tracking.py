"""Issue 17, item 4: runs logged to a real MLflow tracking server (``jupyter mlx mlflow-export``,
and every finished run when ``c.MLXConfig.mlflow_tracking_uri`` is set), read back with
``MlflowClient``: parameters, metric series with their steps, tags, times, the executed notebook
and the comparison report; exporting again duplicates nothing; an interrupted export is redone."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from jupyter_mlx import mlflow_tracking
from jupyter_mlx.cli import main
from jupyter_mlx.config import MLXConfig
from jupyter_mlx.mlflow_tracking import COMPLETE_TAG, RUN_ID_TAG, Tracking, export_run
from jupyter_mlx.ports import free_port
from jupyter_mlx.service import RunService

from notebooks import code_cell, write_failing, write_notebook
from server_process import wait_for

START_TIMEOUT = 120.0  # the server's first start creates its database (migrations): slow on a busy machine
TRAIN = [
    code_cell("lr = 0.1\nepochs = 3", tags=["parameters"]),
    code_cell("from jupyter_mlx import log_metric\n"
              "for epoch in range(epochs):\n"
              "    log_metric('loss', 1.0 / (epoch + 1) - lr, step=epoch)\n"
              "log_metric('accuracy', 0.5 + lr)\n"
              "print('trained', lr)"),
]
ODD_NAMES = [code_cell("from jupyter_mlx import log_metric\n"
                       "log_metric('acc (val)', 0.75)  # parentheses: MLflow refuses the name\n"
                       "log_metric('good', 1.0)")]


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a free port (SQLite, proxied artifacts), in its own process group."""
    pytest.importorskip("mlflow")  # (here, not at collection: imported in a test, mlflow's telemetry stays off)
    home = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    argv = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
            "--artifacts-destination", str(home / "artifacts")]
    # no telemetry, and no job runner (its queue consumers are processes the tests do not need)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = home / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(argv, cwd=home, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(uri):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start (exit {process.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        _stop(process)


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group (the server and its workers), SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A git project with runs made once: train v1, v2; a sweep of grid.ipynb; odd names; a failure."""
    root = tmp_path_factory.mktemp("mlflow_tracking") / "project"
    write_notebook(root / "train.ipynb", *TRAIN)
    write_notebook(root / "grid.ipynb", *TRAIN)
    write_notebook(root / "odd.ipynb", *ODD_NAMES)
    write_failing(root / "failing.ipynb")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "notebooks"], cwd=root, check=True)
    service = RunService(root)
    try:
        v1 = service.submit("train.ipynb", {"lr": 0.1})
        v2 = service.submit("train.ipynb", {"lr": 0.2})
        sweep, grid = service.sweep("grid.ipynb", {"grid": {"lr": [0.3, 0.4]}})
        odd = service.submit("odd.ipynb")
        failed = service.submit("failing.ipynb")
        v1, v2, *grid, odd, failed = service.wait([v1, v2, *grid, odd, failed], timeout=300)
        assert [r.status for r in (v1, v2, *grid, odd)] == ["succeeded"] * 5, [r.error for r in (v1, v2, *grid, odd)]
        assert failed.status == "failed"
        yield {"root": root, "service": service, "v1": v1, "v2": v2, "sweep": sweep.id, "grid": grid,
               "odd": odd, "failed": failed}
    finally:
        service.close()


def mlflow_client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def cli(root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def mlflow_runs(uri: str, experiment: str, run_id: str | None = None) -> list[Any]:
    client = mlflow_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = f"tags.`{RUN_ID_TAG}` = '{run_id}'" if run_id else ""
    return list(client.search_runs([found.experiment_id], query, max_results=1000))


def kept(service: RunService, run_id: str, uri: str) -> dict[str, Any]:
    """What our run keeps of its export to ``uri``."""
    return (service.store.get_run(run_id).exports or {}).get("mlflow", {}).get(uri, {})


def test_a_notebook_s_runs_become_mlflow_runs(project, tracking_uri, monkeypatch, capsys):
    service, v1, v2 = project["service"], project["v1"], project["v2"]
    status, out, err = cli(project["root"], monkeypatch, capsys, "mlflow-export", "train.ipynb",
                           "--tracking-uri", tracking_uri)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("train.ipynb@v1 -> MLflow run ") and "in experiment 'train.ipynb'" in lines[0]
    assert lines[1].startswith("train.ipynb@v2 -> MLflow run ") and f"{tracking_uri}/#/experiments/" in lines[1]
    assert lines[-1] == "2 runs: 2 exported"
    client = mlflow_client(tracking_uri)
    found = {run.data.tags[RUN_ID_TAG]: run for run in mlflow_runs(tracking_uri, "train.ipynb")}
    assert set(found) == {v1.id, v2.id}
    second = found[v2.id]
    assert kept(service, v2.id, tracking_uri)["run_id"] == second.info.run_id  # the mapping on our run
    assert second.data.params == {"lr": "0.2", "epochs": "3"}
    history = client.get_metric_history(second.info.run_id, "loss")
    assert sorted((m.step, round(m.value, 6)) for m in history) == [(0, 0.8), (1, 0.3), (2, round(1 / 3 - 0.2, 6))]
    assert second.data.metrics == {"loss": pytest.approx(1 / 3 - 0.2), "accuracy": pytest.approx(0.7)}
    tags = second.data.tags
    assert tags["mlflow.runName"] == "train.ipynb@v2" and tags["mlx.ref"] == "train.ipynb@v2"
    assert tags["mlx.notebook"] == "train.ipynb" and tags["mlflow.source.name"] == "train.ipynb"
    assert tags["mlflow.source.git.commit"] == v2.git_commit and v2.git_commit
    assert tags["mlx.git_dirty"] == ("true" if v2.git_dirty else "false")
    assert tags.get("mlflow.user") == v2.user if v2.user else "mlflow.user" not in tags
    assert tags[COMPLETE_TAG] == "complete" and "mlx.sweep_id" not in tags
    assert second.info.status == "FINISHED"
    assert second.info.start_time == round(v2.started_at * 1000) and second.info.end_time == round(v2.finished_at * 1000)
    assert [a.path for a in client.list_artifacts(found[v1.id].info.run_id)] == ["train.ipynb"]  # v1: no report
    assert sorted(a.path for a in client.list_artifacts(second.info.run_id)) == ["compare-v1-v2.html", "train.ipynb"]
    folder = Path(client.download_artifacts(second.info.run_id, "", str(project["root"].parent / "downloaded")))
    executed = json.loads((folder / "train.ipynb").read_text())
    assert executed == service.executed_notebook(v2.id)
    report = (folder / "compare-v1-v2.html").read_text()
    assert report.startswith("<!DOCTYPE html>") and "train.ipynb@v1" in report and "train.ipynb@v2" in report

    # again: found, nothing logged twice
    status, out, err = cli(project["root"], monkeypatch, capsys, "mlflow-export", "train.ipynb",
                           "--tracking-uri", tracking_uri)
    assert status == 0, err
    assert out.splitlines()[0].startswith("train.ipynb@v1 already exported: MLflow run ")
    assert out.splitlines()[-1] == "2 runs: 2 already exported"
    assert len(mlflow_runs(tracking_uri, "train.ipynb")) == 2
    assert len(client.get_metric_history(second.info.run_id, "loss")) == 3


def test_a_lost_mapping_is_found_again_by_the_run_id_tag(project, tracking_uri):
    service, v1 = project["service"], project["v1"]
    tracking = Tracking(tracking_uri)
    first = export_run(service, service.store.get_run(v1.id), tracking)
    assert first.action in ("exported", "found")
    service.store.record_export(v1.id, "mlflow", tracking_uri, {})  # lost
    again = export_run(service, service.store.get_run(v1.id), tracking)
    assert again.action == "found" and again.mlflow_run_id == first.mlflow_run_id
    assert kept(service, v1.id, tracking_uri)["run_id"] == first.mlflow_run_id
    assert len(mlflow_runs(tracking_uri, "train.ipynb", v1.id)) == 1


def test_a_sweep_and_an_interrupted_export_redone(project, tracking_uri, monkeypatch, capsys):
    service, first, second = project["service"], *project["grid"]
    client = mlflow_client(tracking_uri)
    experiment = client.get_experiment_by_name("sweeps") or client.create_experiment("sweeps")
    experiment_id = experiment if isinstance(experiment, str) else experiment.experiment_id
    # an export that stopped midway: the run is there, tagged with our id, not marked complete
    stopped = client.create_run(experiment_id, tags={RUN_ID_TAG: first.id}, run_name="stopped midway")
    from mlflow.entities import Metric

    client.log_batch(stopped.info.run_id, metrics=[Metric("loss", 9.0, 0, 0)])
    status, out, err = cli(project["root"], monkeypatch, capsys, "mlflow-export", "--sweep", project["sweep"],
                           "--tracking-uri", tracking_uri, "--experiment", "sweeps")
    assert status == 0, err
    assert [line.split(" ->")[0] for line in out.splitlines()[:-1]] == ["grid.ipynb@v1", "grid.ipynb@v2"]
    runs = mlflow_runs(tracking_uri, "sweeps")
    assert sorted(run.data.tags[RUN_ID_TAG] for run in runs) == sorted([first.id, second.id])
    assert client.get_run(stopped.info.run_id).info.lifecycle_stage == "deleted"
    redone = next(run for run in runs if run.data.tags[RUN_ID_TAG] == first.id)
    assert len(client.get_metric_history(redone.info.run_id, "loss")) == 3  # not the stopped one's 9.0
    assert {run.data.tags["mlx.sweep_id"] for run in runs} == {project["sweep"]}
    assert kept(service, first.id, tracking_uri)["experiment"] == "sweeps"
    later = next(run for run in runs if run.data.tags[RUN_ID_TAG] == second.id)
    assert "compare-v1-v2.html" in [a.path for a in client.list_artifacts(later.info.run_id)]  # with the sweep's v1


def test_a_name_mlflow_refuses_is_skipped_with_a_note(project, tracking_uri, monkeypatch, capsys):
    service, odd = project["service"], project["odd"]
    status, out, err = cli(project["root"], monkeypatch, capsys, "mlflow-export", "odd.ipynb@v1",
                           "--tracking-uri", tracking_uri)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("odd.ipynb@v1 -> MLflow run ")
    assert lines[1].startswith("  note: metric 'acc (val)' not logged: MLflow refused it (") and "Names may only" in lines[1]
    (run,) = mlflow_runs(tracking_uri, "odd.ipynb")
    assert run.data.metrics == {"good": 1.0}
    assert kept(service, odd.id, tracking_uri)["notes"] == [lines[1].removeprefix("  note: ")]


def test_a_failed_run_is_logged_failed_and_an_unfinished_one_skipped(project, tracking_uri):
    service, failed = project["service"], project["failed"]
    tracking = Tracking(tracking_uri, "failures")
    exported = export_run(service, failed, tracking)
    assert exported.action == "exported"
    run = mlflow_client(tracking_uri).get_run(exported.mlflow_run_id)
    assert run.info.status == "FAILED" and run.data.tags["mlx.error"] == "ValueError: bad n=1"
    running = export_run(service, replace(project["v1"], status="running"), tracking)
    assert running.action == "skipped" and running.mlflow_run_id is None
    assert running.describe() == "train.ipynb@v1 skipped: it is running (only finished runs are exported)"


def test_every_finished_run_is_exported_in_the_background(project, tracking_uri):
    root = project["root"]
    write_notebook(root / "auto.ipynb", *TRAIN)
    service = RunService(root, MLXConfig(mlflow_tracking_uri=tracking_uri, mlflow_experiment="automatic"))
    try:
        run = service.run("auto.ipynb", {"epochs": 2})
        assert run.status == "succeeded" and not run.exports  # the run did not wait for the export
        wait_for(lambda: kept(service, run.id, tracking_uri).get("run_id"), 60, "the background export")
    finally:
        service.close()
    (logged,) = mlflow_runs(tracking_uri, "automatic", run.id)
    assert logged.data.tags[COMPLETE_TAG] == "complete" and logged.data.params["epochs"] == "2"
    assert len(mlflow_client(tracking_uri).get_metric_history(logged.info.run_id, "loss")) == 2


def test_a_run_of_a_dead_process_is_exported_once_marked_interrupted(project, tracking_uri):
    import socket

    from jupyter_mlx.store import NewRun

    root = project["root"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    service = RunService(root, MLXConfig(mlflow_tracking_uri=tracking_uri, mlflow_experiment="orphans"))
    try:
        orphan = service.store.create_run(NewRun("train.ipynb", (root / "train.ipynb").read_bytes(),
                                                 host=socket.gethostname(), pid=dead.pid))
        assert service.interrupt_orphans() == [orphan.id]
        wait_for(lambda: kept(service, orphan.id, tracking_uri).get("run_id"), 60, "the interrupted run's export")
    finally:
        service.close()
    (logged,) = mlflow_runs(tracking_uri, "orphans", orphan.id)
    assert logged.info.status == "KILLED" and logged.data.tags[COMPLETE_TAG] == "complete"


def test_an_unreachable_server_never_fails_the_run_and_is_recorded(project, monkeypatch, caplog):
    root = project["root"]
    write_notebook(root / "offline.ipynb", *TRAIN)
    nowhere = f"http://127.0.0.1:{free_port()}"
    attempts = []
    probe = mlflow_tracking.check_reachable
    monkeypatch.setattr(mlflow_tracking, "RETRY_DELAYS", (0.05, 0.1))
    monkeypatch.setattr(mlflow_tracking, "check_reachable", lambda uri, *a: (attempts.append(uri), probe(uri, *a)))
    caplog.set_level(logging.WARNING, logger="jupyter_mlx.mlflow_tracking")
    service = RunService(root, MLXConfig(mlflow_tracking_uri=nowhere))
    try:
        run = service.run("offline.ipynb")
        assert run.status == "succeeded"
        wait_for(lambda: kept(service, run.id, nowhere).get("error"), 30, "the failure on the run")
    finally:
        service.close()
    assert len(attempts) == 3  # the first and two retries
    reopened = RunService(root)
    try:
        error = kept(reopened, run.id, nowhere)
    finally:
        reopened.close()
    assert error["error"].startswith(f"cannot reach the MLflow tracking server at {nowhere}: ") and "run_id" not in error
    assert any("was not exported to MLflow" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_the_command_line_on_an_unreachable_server_and_without_mlflow(project, monkeypatch, capsys):
    nowhere = f"http://127.0.0.1:{free_port()}"
    status, out, err = cli(project["root"], monkeypatch, capsys, "mlflow-export", "train.ipynb@v1",
                           "--tracking-uri", nowhere)
    assert status == 2 and out == ""
    assert err.startswith(f"jupyter mlx mlflow-export: error: cannot reach the MLflow tracking server at {nowhere}: ")
    assert len(err.splitlines()) == 1
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    status, out, err = cli(project["root"], monkeypatch, capsys, "mlflow-export", "train.ipynb@v1")
    assert status == 2 and "no MLflow tracking URI: give --tracking-uri URI" in err
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    status, out, err = cli(project["root"], monkeypatch, capsys, "mlflow-export", "train.ipynb@v1",
                           "--tracking-uri", nowhere)
    assert (status, err) == (2, "jupyter mlx mlflow-export: error: MLflow tracking needs mlflow: "
                                "pip install 'jupyter_mlx[mlflow]'\n")


def test_the_other_commands_do_not_import_mlflow(project):
    code = ("import sys\nfrom jupyter_mlx.cli import main\nimport jupyter_mlx.mlflow_tracking\n"
            "assert main(['runs', 'train.ipynb']) == 0\nprint('mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=project["root"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"
