"""Issue 15, item 4: ``jupyter mlx export --format mlflow`` writes an MLflow pyfunc model of a run's
function, from the state the run captured: ``mlflow models serve`` and ``mlflow.pyfunc.load_model``
(without jupyter_mlx) answer as the run's own function did, byte for byte."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_mlx.cli import main
from jupyter_mlx.errors import MLXError
from jupyter_mlx.ports import free_port
from jupyter_mlx.service import RunService

from notebooks import code_cell, write_notebook
from test_serve import BLOCK_JUPYTER

ROWS = [[1.0, 2.0, 3.0], [0.5, -1.25, 4.0]]
TRAIN = [
    code_cell("import random\nimport numpy as np\n"
              "weights = np.array([random.random() for _ in range(3)])  # no seed: a re-execution differs\n"
              "bias = random.gauss(0, 1)"),
    code_cell("def predict(rows: list[list[float]], offset: float = 0.0) -> list[float]:\n"
              "    return [float(np.dot(weights, row)) + bias + offset for row in rows]\n\n"
              "def describe() -> str:\n"
              "    return 'three weights'"),
    code_cell(f"import json\nprint(json.dumps(predict({ROWS!r})))"),
]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the notebook, with the capture and without, and its model exported once."""
    root = tmp_path_factory.mktemp("mlflow_export") / "project"
    write_notebook(root / "train.ipynb", *TRAIN)
    write_notebook(root / "nocapture.ipynb", *TRAIN)
    opted = json.loads((root / "nocapture.ipynb").read_text())
    opted["metadata"]["jupyter_mlx"] = {"capture": False}
    (root / "nocapture.ipynb").write_text(json.dumps(opted))
    service = RunService(root)
    try:
        run = service.run("train.ipynb")
        assert run.status == "succeeded", run.error
        uncaptured = service.run("nocapture.ipynb")
        assert uncaptured.status == "succeeded" and uncaptured.state is None
        printed = service.executed_notebook(run.id)["cells"][-1]["outputs"][0]["text"]
        environment = dict(service.store.environment(run.environment_id).packages)
        model = service.export_endpoint(run.ref, root.parent / "model", "predict", format="mlflow")
    finally:
        service.close()
    return {"root": root, "run": run, "uncaptured": uncaptured, "model": model, "printed": printed.strip(),
            "environment": environment}


def test_the_model_directory(exported):
    model = exported["model"]
    mlmodel = yaml.safe_load((model / "MLmodel").read_text())
    pyfunc = mlmodel["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model" and pyfunc["config"] == {"function": "predict"}
    assert json.loads(mlmodel["signature"]["inputs"]) == [
        {"type": "array", "items": {"type": "array", "items": {"type": "double"}}, "name": "rows", "required": True},
        {"type": "double", "name": "offset", "required": False},
    ]
    assert json.loads(mlmodel["signature"]["outputs"]) == [{"type": "array", "items": {"type": "double"},
                                                            "required": True}]
    state = (model / "artifacts" / "state.pkl").read_bytes()
    assert hashlib.sha256(state).hexdigest() == exported["run"].state_hash  # the run's blob
    assert (model / "code" / "mlx_endpoint" / "state.py").is_file()
    requirements = (model / "requirements.txt").read_text().splitlines()
    assert f"cloudpickle=={exported['environment']['cloudpickle']}" in requirements  # the kernel's, which pickled it
    assert f"numpy=={exported['run'].state['packages']['numpy']}" in requirements  # weights is an ndarray
    assert any(line.startswith("mlflow==") for line in requirements)
    assert not any(line.lower().startswith(("tornado", "ipython", "jupyter")) for line in requirements)


def test_mlflow_models_serve_answers_as_the_run_did(exported, tmp_path):
    expected = json.loads(exported["printed"])  # what predict answered in the run
    with mlflow_server(exported["model"], tmp_path) as port:
        status, answer = invoke(port, {"inputs": {"rows": ROWS}})
        assert status == 200 and answer == {"predictions": [expected]}, answer
        assert json.dumps(answer["predictions"][0]) == exported["printed"]  # the same JSON, byte for byte
        split = {"dataframe_split": {"columns": ["rows"], "data": [[ROWS], [ROWS[:1]]]}}
        assert invoke(port, split) == (200, {"predictions": [expected, expected[:1]]})
        records = {"dataframe_records": [{"rows": ROWS[1:], "offset": 1.5}, {"rows": ROWS}]}  # offset left out: 0.0
        assert invoke(port, records) == (200, {"predictions": [[expected[1] + 1.5], expected]})
        assert invoke(port, {"inputs": [{"rows": ROWS}, {"rows": ROWS[:1]}]}) == (200, {"predictions": [expected,
                                                                                                     expected[:1]]})
        status, refused = invoke(port, {"inputs": {"rows": [[1, 2, 3]]}})  # integers where the signature says double
        assert status == 400 and "int64 to float64" in refused["message"]


def test_load_model_needs_no_jupyter_mlx(exported, tmp_path):
    probe = ("import json, sys\nimport mlflow\n"
             "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
             f"print(json.dumps(model.predict({{'rows': {ROWS!r}}})[0]))\n"
             "assert 'jupyter_mlx' not in sys.modules\n")
    (tmp_path / "probe.py").write_text(probe)
    (tmp_path / "block.py").write_text(BLOCK_JUPYTER)
    done = subprocess.run([sys.executable, str(tmp_path / "block.py"), str(tmp_path / "probe.py"),
                           str(exported["model"])], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == exported["printed"]


def test_refusals(exported, tmp_path, monkeypatch):
    root, run = exported["root"], exported["run"]
    service = RunService(root)
    try:
        with pytest.raises(MLXError, match=r"^--format mlflow needs the state the run captured: "
                                           r"nocapture.ipynb@v1 captured no state \(capture was off"):
            service.export_endpoint(exported["uncaptured"].ref, tmp_path / "a", "predict", format="mlflow")
        write_notebook(root / "broken.ipynb", *TRAIN[:2], code_cell("raise RuntimeError('no data')"))
        assert service.run("broken.ipynb").status == "failed"
        with pytest.raises(MLXError, match=r"^--format mlflow needs the state a successful run captured, and "
                                           r"broken.ipynb@v1 is failed: export a version that succeeded$"):
            service.export_endpoint("broken.ipynb@v1", tmp_path / "a", "predict", format="mlflow")
        with pytest.raises(MLXError, match="defines no function 'nope'; it defines describe, predict"):
            service.export_endpoint(run.ref, tmp_path / "a", "nope", format="mlflow")
        with pytest.raises(MLXError, match="describe takes no arguments"):
            service.export_endpoint(run.ref, tmp_path / "a", "describe", format="mlflow")
        with pytest.raises(MLXError, match="needs --function NAME"):
            service.export_endpoint(run.ref, tmp_path / "a", None, format="mlflow")
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "keep.txt").write_text("mine")
        with pytest.raises(MLXError, match="exists and is not empty"):
            service.export_endpoint(run.ref, tmp_path / "notes", "predict", format="mlflow")
        with pytest.raises(MLXError, match="is not an MLflow model: --force replaces only a model folder"):
            service.export_endpoint(run.ref, tmp_path / "notes", "predict", force=True, format="mlflow")
        assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
        monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
        with pytest.raises(MLXError) as missing:
            service.export_endpoint(run.ref, tmp_path / "a", "predict", format="mlflow")
        assert str(missing.value) == "--format mlflow needs mlflow: pip install 'jupyter_mlx[mlflow]'"
    finally:
        service.close()
    assert not (tmp_path / "a").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


def test_the_cli_door(exported, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(exported["root"])
    target = tmp_path / "model"
    target.mkdir()
    (target / "MLmodel").write_text("an earlier export")  # --force replaces a model folder
    assert main(["export", exported["run"].ref, "--function", "predict", "-o", str(target), "--format", "mlflow",
                 "--force"]) == 0
    assert capsys.readouterr().out == f"wrote {target}: mlflow models serve -m {target} --env-manager local\n"
    assert "python_function" in (target / "MLmodel").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left
    with pytest.raises(SystemExit) as refused:
        main(["export", exported["run"].ref, "--function", "predict", "-o", str(tmp_path / "x"), "--format", "onnx"])
    assert refused.value.code == 2 and "invalid choice: 'onnx'" in capsys.readouterr().err


@contextmanager
def mlflow_server(model: Path, cwd: Path) -> Iterator[int]:
    """``mlflow models serve`` of ``model`` on a free port, as a user starts it, until /ping answers;
    stopped with its process group (it starts uvicorn)."""
    port, log = free_port(), cwd / "mlflow-serve.log"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # the venv's uvicorn
    with open(log, "w") as output:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "models", "serve", "-m", str(model), "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _pings(port):
            assert process.poll() is None and time.monotonic() < deadline, \
                f"mlflow models serve did not answer /ping:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield port
    finally:
        _stop_group(process)


def _pings(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/ping")
        return connection.getresponse().status == 200
    except OSError:
        return False


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the whole group, SIGKILL to what is left after 20 s; returns once none is alive."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while _group_alive(process) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _group_alive(process):
            break
    process.wait(timeout=10)


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader once it exits
    try:
        os.killpg(process.pid, 0)
        return True
    except ProcessLookupError:
        return False


def invoke(port: int, body: Any) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/invocations", body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer
