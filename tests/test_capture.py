"""Issue 15, item 1: a successful run captures the state its notebook's functions need, in the
kernel, with cloudpickle; what cannot be pickled is named, never a failed run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlx.config import MLXConfig
from jupyter_mlx.service import RunService
from notebooks import code_cell, write_notebook

TRAIN = [
    code_cell("scale = 1.0", tags=["parameters"]),
    code_cell("import numpy as np\nimport socket\n"
              "weights = np.random.default_rng().normal(size=3)  # no seed: a re-execution differs\n"
              "OFFSET = 0.5\n"
              "square = lambda v: v * v\n"
              "class Scaler:\n    def __init__(self, k):\n        self.k = k\n"
              "    def __call__(self, v):\n        return v * self.k\n"
              "scaler = Scaler(scale)\n"
              "connection = socket.socket()\n"
              "unused = list(range(1000))\n"),
    code_cell("def features(rows):\n    return np.asarray(rows, dtype=float) + OFFSET\n\n"
              "def predict(rows: list[list[float]]) -> list[float]:\n"
              "    return [float(x) for x in scaler(square(features(rows) @ weights))]\n\n"
              "def ping():\n    return connection.fileno()\n\n"
              "def _private():\n    return unused"),
    code_cell("print(json.dumps(predict([[1, 2, 3], [0, 1, 0]])))".replace("print(", "import json\nprint(")),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write_notebook(root / "train.ipynb", *TRAIN)
    return root


def test_a_successful_run_captures_what_its_functions_use_and_names_what_it_cannot(project):
    service = RunService(project)
    try:
        run = service.run("train.ipynb", {"scale": 2.0})
        assert run.status == "succeeded", run.error
        state = run.state
        assert state["functions"] == ["features", "ping", "predict"]  # top-level, not _private
        objects = {o["name"]: o for o in state["objects"]}
        assert set(objects) == {"OFFSET", "features", "np", "predict", "scaler", "square", "weights"}
        assert objects["square"]["kind"] == "function" and objects["scaler"]["kind"] == "Scaler"
        assert objects["np"] == {"name": "np", "kind": "module", "module": "numpy", "size": 0, "sha256": None}
        assert objects["weights"]["package"] == "numpy" and objects["weights"]["size"] > 0
        assert "numpy" in state["packages"]
        refused = dict(state["not_capturable"])
        assert set(refused) == {"connection", "ping"} and "socket" in refused["connection"]
        assert refused["ping"] == "it uses connection, which could not be captured"
        assert "unused" not in objects  # only _private uses it
        printed = service.executed_notebook(run.id)["cells"][-1]["outputs"][0]["text"]
        blob = service.store.blobs.get(run.state_hash)
    finally:
        service.close()

    # loaded in another process, the run's own objects answer as they did in the run, byte for byte
    probe = ("import json, sys\nfrom jupyter_mlx.serve.state import load_state\n"
             "ns = load_state(sys.stdin.buffer.read())\nprint(json.dumps(ns['predict']([[1, 2, 3], [0, 1, 0]])))")
    done = subprocess.run([sys.executable, "-c", probe], input=blob, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == printed


def test_show_lists_the_captured_objects(project, capsys, monkeypatch):
    from jupyter_mlx.cli import main

    service = RunService(project)
    try:
        run = service.run("train.ipynb")
    finally:
        service.close()
    monkeypatch.chdir(project)
    assert main(["show", run.ref]) == 0
    out = capsys.readouterr().out
    assert "state      for features, ping, predict: 7 object(s)" in out
    assert "weights (ndarray," in out and "np (module numpy)" in out
    assert "not capturable: connection: TypeError" in out and "not capturable: ping: it uses connection" in out
    assert main(["show", run.ref, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"]["functions"] == ["features", "ping", "predict"]


def test_no_capture_when_opted_out_failed_or_without_functions(project):
    write_notebook(project / "opted.ipynb", *TRAIN)
    opted = json.loads((project / "opted.ipynb").read_text())
    opted["metadata"]["jupyter_mlx"] = {"capture": False}
    (project / "opted.ipynb").write_text(json.dumps(opted))
    write_notebook(project / "fails.ipynb", code_cell("def f():\n    return 1"), code_cell("1 / 0"))
    write_notebook(project / "plain.ipynb", code_cell("x = 1"))
    service = RunService(project)
    try:
        assert service.run("opted.ipynb").state is None
        failed = service.run("fails.ipynb")
        assert failed.status == "failed" and failed.state is None and failed.state_hash is None
        plain = service.run("plain.ipynb")
        assert plain.state["functions"] == [] and plain.state["objects"] == []
    finally:
        service.close()
    service = RunService(project, MLXConfig(capture_state=False))
    try:
        assert service.run("train.ipynb").state is None
    finally:
        service.close()


def test_only_the_named_functions_and_within_the_limit(project):
    service = RunService(project, MLXConfig(serve_functions=["features"], capture_max_size=10_000))
    try:
        run = service.run("train.ipynb")
        assert run.state["functions"] == ["features"]
        assert {o["name"] for o in run.state["objects"]} == {"OFFSET", "features", "np"}
    finally:
        service.close()
    service = RunService(project, MLXConfig(capture_max_size=200))
    try:
        run = service.run("train.ipynb")
        skipped = dict(run.state["not_capturable"])
        assert any("would pass the state's limit of 200" in reason for reason in skipped.values()), skipped
    finally:
        service.close()


def test_the_state_blob_goes_with_the_last_run_that_uses_it(project):
    service = RunService(project)
    try:
        run = service.run("train.ipynb")
        assert service.store.blobs.exists(run.state_hash)
        service.delete_run(run.id)
        assert not service.store.blobs.exists(run.state_hash)
    finally:
        service.close()
