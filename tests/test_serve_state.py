"""Issue 15, items 2-3: endpoints start from the run's captured state, not from a re-execution.

The model is trained with randomness (no seed): the state answers exactly as the run did, a
re-execution cannot. Real endpoint processes on 127.0.0.1, one project per module."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_mlx.config import MLXConfig
from jupyter_mlx.errors import MLXError
from jupyter_mlx.ports import free_port
from jupyter_mlx.service import RunService
from notebooks import code_cell, write_notebook
from test_capture import TRAIN
from test_serve import BLOCK_JUPYTER, request

ROWS = [[1, 2, 3], [0, 1, 0]]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """train.ipynb@v1 (captured), a failing run, and a run whose state is over its size limit."""
    root = tmp_path_factory.mktemp("serve-state")
    write_notebook(root / "train.ipynb", *TRAIN)
    write_notebook(root / "broken.ipynb", code_cell("def predict(rows):\n    return rows"),
                   code_cell("raise RuntimeError('the data is gone')"))
    service = RunService(root)
    assert service.run("train.ipynb", {"scale": 2.0}).status == "succeeded"
    assert service.run("broken.ipynb").status == "failed"
    yield service
    for record, _ in service.endpoints.list():
        service.endpoints.stop(record.name)
    service.close()


def printed_answer(service: RunService, ref: str) -> list[float]:
    """What the run's last cell printed: ``predict(ROWS)`` in the run itself."""
    run = service.get_run(ref)
    return json.loads(service.executed_notebook(run.id)["cells"][-1]["outputs"][0]["text"])


def test_the_endpoint_answers_exactly_as_the_run_did(project):
    deployed = project.endpoints.deploy("train.ipynb@v1", function="predict", name="model", no_auth=True, workers=2)
    serving = deployed.record.deployment
    assert serving.serves == "state" and serving.state_hash == project.get_run("train.ipynb@v1").state_hash
    assert serving.describe().startswith("serves the run's captured state")
    port = deployed.record.port
    status, body, _ = request(port, "POST", "/predict", {"rows": ROWS})
    assert status == 200 and body == printed_answer(project, "train.ipynb@v1")  # the run's weights, not new ones
    health = request(port, "GET", "/healthz")[1]
    assert health["serves"] == "state" and health["loaded_into"]["executable"] == sys.executable
    assert health["loaded_into"]["packages"]["numpy"] and health["loaded_into"]["drift"] == []
    assert "loaded the state of train.ipynb@v1" in project.endpoints.logs("model")
    folder = project.project.root / ".mlx" / "endpoints" / "model"
    assert [p.name for p in folder.glob("state-*.pkl")] == [f"state-{serving.state_hash[:16]}.pkl"]
    project.endpoints.stop("model")
    assert not list(folder.glob("state-*.pkl"))  # a stopped endpoint keeps no copy
    assert project.endpoints.restore() == []  # stopped on purpose: not restored
    listed = project.endpoints.get("model")[0].to_json()["serving"]
    assert listed["serves"] == "state" and listed["source"].startswith("serves the run's captured state")


def test_reexecute_runs_the_notebook_again_and_trains_another_model(project):
    deployed = project.endpoints.deploy("train.ipynb@v1", function="predict", name="again", no_auth=True,
                                        reexecute=True)
    serving = deployed.record.deployment
    assert serving.serves == "reexecution" and serving.reexecute_reason == "asked for (--reexecute)"
    status, body, _ = request(deployed.record.port, "POST", "/predict", {"rows": ROWS})
    assert status == 200 and body != printed_answer(project, "train.ipynb@v1")  # new random weights
    assert request(deployed.record.port, "GET", "/healthz")[1]["serves"] == "reexecution"
    # a redeploy without --reexecute serves the state again, under the same name
    redeployed = project.endpoints.deploy("train.ipynb@v1", function="predict", name="again", no_auth=True)
    assert redeployed.record.deployment.serves == "state"
    assert request(deployed.record.port, "POST", "/predict", {"rows": ROWS})[1] == printed_answer(project, "train.ipynb@v1")
    # and a rollback goes back to the re-executed version, as deployed
    assert project.endpoints.rollback("again").deployment.serves == "reexecution"
    project.endpoints.stop("again")
    assert not list((project.project.root / ".mlx" / "endpoints" / "again").glob("state-*.pkl"))


def test_a_function_using_what_could_not_be_captured_is_re_executed_saying_why(project):
    deployed = project.endpoints.deploy("train.ipynb@v1", function="ping", name="ping", no_auth=True)
    serving = deployed.record.deployment
    assert serving.serves == "reexecution"
    assert serving.reexecute_reason == "ping is not capturable: it uses connection, which could not be captured"
    status, body, _ = request(deployed.record.port, "POST", "/ping", {})
    assert status == 200 and isinstance(body, int)  # the socket, opened again by the re-execution
    project.endpoints.stop("ping")


def test_a_failed_run_is_refused_with_the_remedy(project):
    with pytest.raises(MLXError, match=r"broken.ipynb@v1 failed, so it has no captured state to serve: deploy "
                                        r"a version that succeeded, or give --reexecute"):
        project.endpoints.deploy("broken.ipynb@v1", function="predict", name="broken", no_auth=True)
    assert not (project.project.root / ".mlx" / "endpoints" / "broken").exists()


def test_a_missing_or_corrupted_state_blob_is_a_clear_error_and_reexecute_still_serves(project, tmp_path):
    run = project.get_run("train.ipynb@v1")
    blob = project.store.blobs.path(run.state_hash)
    kept = tmp_path / "blob"
    kept.write_bytes(blob.read_bytes())
    try:
        blob.unlink()
        with pytest.raises(MLXError, match="the captured state of train.ipynb@v1 is missing from the blob store: "
                                           "give --reexecute"):
            project.endpoints.deploy("train.ipynb@v1", function="predict", name="lost", no_auth=True)
        data = bytearray(kept.read_bytes())
        data[-20] ^= 0xFF
        blob.write_bytes(bytes(data))
        with pytest.raises(MLXError, match="the captured state of train.ipynb@v1 is corrupted"):
            project.endpoints.deploy("train.ipynb@v1", function="predict", name="lost", no_auth=True)
        assert not (project.project.root / ".mlx" / "endpoints" / "lost").exists()
        deployed = project.endpoints.deploy("train.ipynb@v1", function="predict", name="lost", no_auth=True,
                                            reexecute=True)
        assert request(deployed.record.port, "POST", "/predict", {"rows": ROWS})[0] == 200
        project.endpoints.stop("lost")
    finally:
        blob.write_bytes(kept.read_bytes())


def _with_state_packages(service: RunService, ref: str, packages: dict[str, str]) -> dict[str, str]:
    """Pretend the run captured its state with other package versions; returns the real ones."""
    run = service.get_run(ref)
    database = service.project.root / ".mlx" / "runs.sqlite"
    state = dict(run.state)
    before = state["packages"]
    state["packages"] = packages
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE runs SET state = ? WHERE id = ?", (json.dumps(state), run.id))
    return before


def test_a_state_captured_with_other_package_versions_is_refused_unless_drift_is_allowed(project):
    real = _with_state_packages(project, "train.ipynb@v1", {"numpy": "0.1.0", "no-such-package": "1.0"})
    try:
        with pytest.raises(MLXError) as refused:
            project.endpoints.deploy("train.ipynb@v1", function="predict", name="drift", no_auth=True)
        message = refused.value.message
        assert "captured with other package versions: no-such-package 1.0 (state) is not installed here; " \
               "numpy 0.1.0 (state) vs " in message
        assert "--allow-version-drift" in message and "\n" not in message
        deployed = project.endpoints.deploy("train.ipynb@v1", function="predict", name="drift", no_auth=True,
                                            allow_version_drift=True)
        health = request(deployed.record.port, "GET", "/healthz")[1]
        assert health["serves"] == "state" and len(health["loaded_into"]["drift"]) == 2
        assert "version drift allowed: numpy 0.1.0 (state)" in project.endpoints.logs("drift")
        project.endpoints.stop("drift")
    finally:
        _with_state_packages(project, "train.ipynb@v1", real)


def test_a_run_without_a_state_is_re_executed_saying_why(tmp_path):
    root = tmp_path / "off"
    write_notebook(root / "train.ipynb", *TRAIN)
    service = RunService(root, config=MLXConfig(capture_state=False))
    try:
        assert service.run("train.ipynb", {"scale": 2.0}).status == "succeeded"
        code = service.served_code("train.ipynb@v1")
        from jupyter_mlx.serve.source import served_from

        source = served_from(code, "function", "predict")
        assert source.serves == "reexecution"
        assert source.reason == "train.ipynb@v1 captured no state (capture was off, or the run predates it)"
        # a notebook file is not a run: nothing was captured
        file_source = served_from(service.served_code("train.ipynb"), "function", "predict")
        assert file_source.reason == "train.ipynb is a notebook file, not a run: nothing was captured"
    finally:
        service.close()


def test_a_state_over_its_size_limit_falls_back_to_re_execution(tmp_path):
    root = tmp_path / "small"
    write_notebook(root / "train.ipynb", *TRAIN)
    service = RunService(root, config=MLXConfig(capture_max_size=64))
    try:
        assert service.run("train.ipynb", {"scale": 2.0}).status == "succeeded"
        from jupyter_mlx.serve.source import served_from

        source = served_from(service.served_code("train.ipynb@v1"), "function", "predict")
        assert source.serves == "reexecution" and source.reason.startswith("predict is not capturable: ")
        assert "limit of 64" in source.reason or "which could not be captured" in source.reason
    finally:
        service.close()


def test_the_foreground_serve_says_where_its_function_comes_from(project):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "jupyter_mlx.cli", "serve", "train.ipynb@v1", "--function",
                                "predict", "--no-auth", "--port", str(port)], cwd=project.project.root,
                               stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()
        assert "serves the run's captured state (state " in first and "Ctrl-C stops" in first
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = request(port, "POST", "/predict", {"rows": ROWS})
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert answer[0] == 200 and answer[1] == printed_answer(project, "train.ipynb@v1")
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_the_cli_deploy_says_where_its_function_comes_from(project, monkeypatch, capsys):
    from jupyter_mlx.cli import main

    monkeypatch.chdir(project.project.root)
    assert main(["deploy", "train.ipynb@v1", "--function", "ping", "--name", "cli", "--no-auth"]) == 0
    out = capsys.readouterr().out
    assert "re-executes the notebook at start: ping is not capturable: it uses connection" in out
    assert main(["endpoints"]) == 0
    assert "re-executes" in next(line for line in capsys.readouterr().out.splitlines() if line.startswith("cli "))
    assert main(["deploy", "broken.ipynb@v1", "--function", "predict", "--no-auth"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "broken.ipynb@v1 failed, so it has no captured state" in err
    assert main(["stop", "cli"]) == 0


def test_export_serves_the_runs_state_without_jupyter(project, tmp_path):
    folder = project.export_endpoint("train.ipynb@v1", tmp_path / "service", function="predict")
    assert (folder / "state.pkl").is_file()
    source = (folder / "function.py").read_text()
    assert "def predict(rows: list[list[float]]) -> list[float]:" in source and "def features(rows):" in source
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("cloudpickle==") for line in requirements)
    assert any(line.startswith("numpy==") for line in requirements)
    assert "state.pkl" in (folder / "README.md").read_text()
    (tmp_path / "block.py").write_text(BLOCK_JUPYTER)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(tmp_path / "block.py"), str(folder / "app.py"), "--port", str(port),
                                "--no-auth"], stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body, _ = request(port, "POST", "/predict", {"rows": ROWS})
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
                time.sleep(0.1)
        assert status == 200 and body == printed_answer(project, "train.ipynb@v1")
    finally:
        process.terminate()
        process.communicate(timeout=30)
    # a corrupted state.pkl: the service refuses to start, naming the remedy
    (folder / "state.pkl").write_bytes(b"not the state")
    refused = subprocess.run([sys.executable, str(tmp_path / "block.py"), str(folder / "app.py"), "--port",
                              str(free_port()), "--no-auth"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 3 and "is corrupted (its hash is not the run's)" in refused.stderr
    with pytest.raises(MLXError, match="failed, so it has no captured state"):
        project.export_endpoint("broken.ipynb@v1", tmp_path / "broken", function="predict")
    reexecuted = project.export_endpoint("broken.ipynb@v1", tmp_path / "broken", function="predict", reexecute=True)
    assert not (reexecuted / "state.pkl").exists()
