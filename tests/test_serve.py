"""Serving a notebook function: a real endpoint process per module, requests over HTTP on 127.0.0.1."""
from __future__ import annotations

import http.client
import os
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from jupyter_mlx.errors import MLXError
from jupyter_mlx.ports import free_port
from jupyter_mlx.service import RunService

from endpoint_cleanup import stop_endpoints
from notebooks import code_cell, write_notebook

MODEL = [
    code_cell("scale = 1.0  # what predict multiplies by", tags=["parameters"]),
    code_cell("import time\nimport matplotlib.pyplot as plt\nstore = {}"),
    code_cell(
        "def predict(values: list[float], offset: float = 0.0) -> list[float]:\n"
        "    '''Each value times scale, plus offset.'''\n"
        "    return [v * scale + offset for v in values]\n"
        "\n"
        "def fail(x: int) -> int:\n"
        "    raise ValueError(f'no {x}')\n"
        "\n"
        "def slow(seconds: float) -> str:\n"
        "    time.sleep(seconds)\n"
        "    return 'done'\n"
        "\n"
        "def remember(key: str, value: int) -> dict:\n"
        "    store[key] = value\n"
        "    return dict(store)\n"
        "\n"
        "def chart(points: list[float]):\n"
        "    fig, ax = plt.subplots(figsize=(2, 1.5))\n"
        "    ax.plot(points)\n"
        "    return fig"
    ),
    code_cell("print('a cell for the report', predict([1, 2]))"),
]


def request(port: int, method: str, path: str, body=None, token: str | None = None, raw: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    content_type = response.getheader("Content-Type", "")
    return response.status, (json.loads(data) if content_type.startswith("application/json") else data), content_type


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """model.ipynb run twice: v1 with scale=2, v2 with scale=3."""
    root = tmp_path_factory.mktemp("serve")
    write_notebook(root / "model.ipynb", *MODEL)
    service = RunService(root)
    assert service.run("model.ipynb", {"scale": "2"}).status == "succeeded"
    assert service.run("model.ipynb", {"scale": "3"}).status == "succeeded"
    yield service
    for record, _ in service.endpoints.list():
        service.endpoints.stop(record.name)
    service.close()


@pytest.fixture(scope="module")
def endpoint(project):
    deployed = project.endpoints.deploy("model.ipynb@v1", function="predict", name="model", timeout=1.0, max_body=4096)
    return deployed.record.port, deployed.token


def test_the_function_answers_with_the_runs_parameters(endpoint):
    port, token = endpoint
    status, body, content_type = request(port, "POST", "/predict", {"values": [1, 2.5], "offset": 1}, token)
    assert status == 200 and content_type == "application/json" and body == [3.0, 6.0]  # scale=2: v1's


def test_auth_is_required_and_checked(endpoint):
    port, token = endpoint
    status, body, _ = request(port, "POST", "/predict", {"values": [1]})
    assert status == 401 and body["error"] == "unauthorized"
    status, body, _ = request(port, "POST", "/predict", {"values": [1]}, token="not-the-token")
    assert status == 403 and body["error"] == "forbidden"
    status, body, _ = request(port, "GET", "/healthz")  # probes need no token


def test_healthz_tells_a_stranger_only_that_it_is_up(endpoint):
    port, token = endpoint
    status, body, _ = request(port, "GET", "/healthz")
    assert status == 200 and body == {"status": "ok"}  # no notebook, ref, function, pid or latencies
    request(port, "POST", "/predict", {"values": [1]}, token)  # counted; probes are not
    status, body, _ = request(port, "GET", "/healthz", token=token)
    assert status == 200 and body["status"] == "ok" and body["ref"] == "model.ipynb@v1"
    assert body["notebook"] == "model.ipynb" and body["function"] == "predict" and body["pid"] > 0
    assert body["requests"] >= 1 and "p50" in body["latency_ms"]
    status, body, _ = request(port, "GET", "/healthz", token="not-the-token")
    assert status == 403 and body["error"] == "forbidden"


@pytest.mark.parametrize("payload, message", [
    (b"{nope", "the body is not valid JSON"),
    (b'{"values": "abc"}', "values: expected an array, got a string"),
    (b'{"values": [1, "x"]}', "values[1]: expected a number, got a string"),
    (b"{}", "missing argument(s): values"),
    (b'{"values": [1], "scale": 3}', "unknown argument(s): scale"),
    (b"[1, 2]", "the body must be a JSON object"),
    (b'"values"', "the body must be a JSON object"),
    (b'{"values": [NaN]}', "NaN is not a JSON value"),
    (b'{"values": [-Infinity]}', "-Infinity is not a JSON value"),
    (b'{"values": [1e999]}', "the number 1e999 is out of range"),
    (b'{"values": [1], "\xff": 2}', "the body is not valid JSON"),  # not UTF-8
])
def test_bad_bodies_are_400_saying_what_is_wrong(endpoint, payload, message):
    port, token = endpoint
    status, body, _ = request(port, "POST", "/predict", token=token, raw=payload)
    assert status == 400 and set(body) == {"error", "message"} and message in body["message"], body


@pytest.mark.parametrize("payload, message", [
    (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    (b'{"x": ' + b"9" * 5000 + b"}", "the body is not valid JSON"),  # past Python's int digits limit
])
def test_hostile_bodies_are_400_in_the_endpoints_error_shape(toolbox, payload, message):
    status, body, content_type = request(toolbox["fail"], "POST", "/fail", raw=payload)
    assert status == 400 and content_type == "application/json", body
    assert body == {"error": "invalid_request", "message": body["message"]} and message in body["message"]
    assert request(toolbox["fail"], "POST", "/fail", {"x": 1})[0] == 500  # still serving: the function raises


def test_oversized_body_is_413(endpoint):
    port, token = endpoint
    status, body, _ = request(port, "POST", "/predict", token=token, raw=b'{"values": [' + b"1," * 5000 + b"1]}")
    assert status == 413 and "at most 4,096" in body["message"]


def test_unknown_route_and_method(endpoint):
    port, token = endpoint
    assert request(port, "POST", "/nope", {}, token)[0] == 404
    assert request(port, "GET", "/predict", None, token)[0] == 405


def test_openapi_describes_the_function(endpoint):
    port, token = endpoint
    status, document, _ = request(port, "GET", "/openapi.json", None, token)
    operation = document["paths"]["/predict"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert status == 200 and schema["required"] == ["values"]
    assert schema["properties"]["values"] == {"type": "array", "items": {"type": "number"}}
    assert operation["summary"] == "Each value times scale, plus offset."


@pytest.fixture(scope="module")
def toolbox(project):
    """The other functions of the notebook, one endpoint each, without auth."""
    ports = {}
    for function in ("fail", "slow", "remember", "chart"):
        deployed = project.endpoints.deploy("model.ipynb@v1", function=function, no_auth=True, timeout=1.0)
        assert deployed.token is None
        ports[function] = deployed.record.port
    return ports


def test_a_raising_function_is_a_500_and_the_endpoint_keeps_serving(toolbox):
    status, body, _ = request(toolbox["fail"], "POST", "/fail", {"x": 7})
    assert status == 500 and body == {"error": "function_error", "exception": "ValueError", "message": "ValueError: no 7"}
    assert request(toolbox["fail"], "POST", "/fail", {"x": 8})[0] == 500  # still there
    health = request(toolbox["fail"], "GET", "/healthz")[1]
    assert health["requests"] >= 2 and health["errors"] >= 2


def test_a_slow_request_hits_the_timeout_and_the_endpoint_keeps_serving(toolbox):
    started = time.monotonic()
    status, body, _ = request(toolbox["slow"], "POST", "/slow", {"seconds": 5})
    assert status == 504 and body["error"] == "timeout" and time.monotonic() - started < 4
    assert request(toolbox["slow"], "POST", "/slow", {"seconds": 0.01})[1] == "done"


def test_globals_persist_across_requests(toolbox):
    request(toolbox["remember"], "POST", "/remember", {"key": "a", "value": 1})
    assert request(toolbox["remember"], "POST", "/remember", {"key": "b", "value": 2})[1] == {"a": 1, "b": 2}


def test_a_figure_is_returned_as_png(toolbox):
    status, body, content_type = request(toolbox["chart"], "POST", "/chart", {"points": [1, 3, 2]})
    assert status == 200 and content_type == "image/png" and body.startswith(b"\x89PNG")


def test_redeploy_and_rollback_under_a_stream_of_requests(project, endpoint):
    port, token = endpoint
    answers, failures, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            try:
                status, body, _ = request(port, "POST", "/predict", {"values": [1]}, token)
                (answers if status == 200 else failures).append(body if status == 200 else (status, body))
            except OSError as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        redeployed = project.endpoints.deploy("model.ipynb@v2", function="predict", name="model", timeout=1.0)
        assert redeployed.token is None and redeployed.record.port == port  # same address, same token
        time.sleep(0.3)
        assert request(port, "POST", "/predict", {"values": [1]}, token)[1] == [3.0]  # v2: scale=3
        rolled = project.endpoints.rollback("model")
        assert rolled.deployment.ref == "model.ipynb@v1"
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert failures == []
    assert [2.0] in answers and [3.0] in answers and answers[-1] == [2.0]


def test_a_request_is_counted_before_its_answer_arrives(project, endpoint):
    """``curl`` then ``jupyter mlx endpoints``: the count read right after each answer includes it."""
    port, token = endpoint
    _, before = next(item for item in project.endpoints.list() if item[0].name == "model")
    counted = before["health"]["requests"]
    for _ in range(10):
        request(port, "POST", "/predict", {"values": [1]}, token)
        counted += 1
        _, status = next(item for item in project.endpoints.list() if item[0].name == "model")
        assert status["health"]["requests"] == counted


def test_endpoints_are_listed_and_stopped(project, endpoint, toolbox):
    port, token = endpoint
    request(port, "POST", "/predict", {"values": [1]}, token)
    names = {record.name: status for record, status in project.endpoints.list()}
    assert names["model-chart"]["state"] == "serving" and names["model-chart"]["health"]["status"] == "ok"
    # the manager keeps only the token's hash, and still lists the request counts of an endpoint with one
    assert names["model"]["health"]["requests"] >= 1 and names["model"]["health"]["latency_ms"]["p50"] is not None
    project.endpoints.stop("model-chart")
    record, status = project.endpoints.get("model-chart")
    assert status["state"] == "stopped" and record.desired == "stopped"
    with pytest.raises(ConnectionRefusedError):
        request(toolbox["chart"], "GET", "/healthz")


@pytest.mark.parametrize("target, options, code, message", [
    ("model.ipynb@v1", {"function": "nope"}, "invalid_request",
     "model.ipynb@v1 defines no function 'nope'; it defines chart, fail, predict, remember, slow"),
    ("model.ipynb@v9", {"function": "predict"}, "not_found", "model.ipynb has no run v9"),
    ("model.ipynb@v1", {"function": "predict", "name": "Bad Name"}, "invalid_request", "invalid endpoint name"),
    ("model.ipynb@v1", {"function": "predict", "workers": 0}, "invalid_request", "workers must be between 1 and 64"),
    ("model.ipynb@v1", {}, "invalid_notebook", "has no '# GET /path' annotated cells: give --function NAME"),
])
def test_bad_deployments_are_clear_errors(project, target, options, code, message):
    with pytest.raises(MLXError) as caught:
        project.endpoints.deploy(target, **options)
    assert caught.value.code == code and message in caught.value.message


def test_a_taken_port_is_a_clear_error(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(MLXError, match="cannot listen on 127.0.0.1"):
            project.endpoints.deploy("model.ipynb@v1", function="predict", name="clash", port=taken.getsockname()[1])


def test_serve_in_the_foreground_from_the_shell(project):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_mlx.cli", "serve", "model.ipynb@v2", "--function", "predict",
         "--port", str(port), "--no-auth"],
        cwd=project.project.root, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert request(port, "POST", "/predict", {"values": [2]})[1] == [6.0]
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
                time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "serving: model.ipynb (model.ipynb@v2)" in err and "stopped" in err


BLOCK_JUPYTER = '''
import os, runpy, sys
from importlib.machinery import PathFinder
HERE = os.path.dirname(os.path.abspath(sys.argv[1]))
BLOCKED = {"jupyter_mlx", "jupyter_client", "jupyter_server", "jupyter_core", "ipykernel", "nbformat", "nbconvert",
           "papermill", "jupyterlab", "notebook"}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            spec = PathFinder.find_spec(name, path)
            if spec is None or not (spec.origin or "").startswith(HERE):
                raise ImportError(f"{name} is not installed where the export runs")
        return None
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
sys.path.insert(0, HERE)
runpy.run_path(sys.argv[0], run_name="__main__")
'''


def test_export_serves_the_same_function_without_jupyter(project, tmp_path):
    folder = project.export_endpoint("model.ipynb@v2", tmp_path / "service", function="predict")
    assert {p.name for p in folder.iterdir()} >= {"app.py", "notebook_code.py", "requirements.txt", "README.md",
                                                  "endpoint.json", "mlx_endpoint"}
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("tornado==") for line in requirements)
    assert any(line.startswith("matplotlib==") for line in requirements)  # the notebook imports it
    assert "scale = 3" in (folder / "notebook_code.py").read_text()  # v2's parameter, injected
    (tmp_path / "block.py").write_text(BLOCK_JUPYTER)
    port = free_port()
    refused = subprocess.run([sys.executable, str(tmp_path / "block.py"), str(folder / "app.py"), "--port", str(port)],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "ENDPOINT_TOKEN": ""})
    assert refused.returncode == 2 and "set ENDPOINT_TOKEN" in refused.stderr  # safe by default
    process = subprocess.Popen([sys.executable, str(tmp_path / "block.py"), str(folder / "app.py"), "--port", str(port)],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "ENDPOINT_TOKEN": "s3cret"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body, _ = request(port, "POST", "/predict", {"values": [1, 2]}, token="s3cret")
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
                time.sleep(0.1)
        assert status == 200 and body == [3.0, 6.0]
        assert request(port, "POST", "/predict", {"values": [1]})[0] == 401
    finally:
        process.terminate()
        process.communicate(timeout=30)
    with pytest.raises(MLXError, match="not empty"):
        project.export_endpoint("model.ipynb@v2", folder, function="predict")
    with pytest.raises(MLXError, match="defines no function 'nope'"):
        project.export_endpoint("model.ipynb@v2", tmp_path / "other", function="nope")
    assert not (tmp_path / "other").exists()


def test_kernel_gateway_style_cells_through_the_real_process(project):
    import shutil
    from pathlib import Path

    shutil.copy(Path(__file__).parent.parent / "examples" / "api.ipynb", project.project.root / "api.ipynb")
    deployed = project.endpoints.deploy("api.ipynb", no_auth=True, workers=2)
    port = deployed.record.port
    assert deployed.record.deployment.mode == "cells"
    status, body, _ = request(port, "GET", "/hello")
    assert status == 200 and body == b"Hello from the items API!\n"
    status, item, content_type = request(port, "GET", "/items/1")
    assert status == 200 and content_type == "application/json" and item["name"] == "apple"
    assert request(port, "GET", "/_api/spec/swagger.json")[0] == 200
    assert request(port, "GET", "/healthz")[1]["mode"] == "cells"
    project.endpoints.stop(deployed.record.name)


def test_endpoints_that_died_are_restored_from_their_records(project):
    """As after a reboot: the supervisor and its version killed, then the server starts."""
    import os

    deployed = project.endpoints.deploy("model.ipynb@v1", function="predict", name="phoenix", no_auth=True)
    status = json.loads((project.project.root / ".mlx" / "endpoints" / "phoenix" / "status.json").read_text())
    for pid in (status["supervisor_pid"], status["version_pid"]):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while project.endpoints.get("phoenix")[1]["state"] != "down":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert project.endpoints.restore() == ["phoenix"]
    assert request(deployed.record.port, "POST", "/predict", {"values": [1]})[1] == [2.0]  # same port, same version
    assert project.endpoints.restore() == []  # already serving
    project.endpoints.stop("phoenix")


def test_the_cli_lists_endpoints_and_shows_their_logs(project, endpoint, monkeypatch, capsys):
    from jupyter_mlx.cli import main

    monkeypatch.chdir(project.project.root)
    assert main(["endpoints"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "VERSION", "ROUTE", "FROM", "URL"]
    model = next(line for line in lines if line.startswith("model "))
    assert "POST /predict" in model and " state " in model and "serving" in model
    assert main(["logs", "model", "-n", "20"]) == 0
    assert "serving model.ipynb@v" in capsys.readouterr().out
    for command in ("stop", "rollback"):
        assert main([command, "nope"]) == 2 and "no endpoint named nope" in capsys.readouterr().err
    assert not (project.project.root / ".mlx" / "endpoints" / "nope").exists()  # no folder, no lock file left


def test_an_unknown_function_is_refused_before_anything_runs(project, monkeypatch, capsys):
    """Read from the notebook's source: no set-up runs, nothing is printed but one line, nothing is stored."""
    from jupyter_mlx.cli import main

    monkeypatch.chdir(project.project.root)
    for command in (["serve", "model.ipynb@v1", "--function", "nosuch", "--port", "0"],
                    ["deploy", "model.ipynb@v1", "--function", "nosuch", "--name", "nosuch"],
                    ["export", "model.ipynb@v1", "--function", "nosuch", "-o", "nosuch-service"]):
        started = time.monotonic()
        assert main(command) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.splitlines() == [
            f"jupyter mlx {command[0]}: error: model.ipynb@v1 defines no function 'nosuch'; "
            "it defines chart, fail, predict, remember, slow"], err
        assert time.monotonic() - started < 5
    assert not (project.project.root / ".mlx" / "endpoints" / "nosuch").exists()
    assert not (project.project.root / "nosuch-service").exists()


def _processes_mentioning(text: str) -> list[str]:
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if text in command:
            found.append(command)
    return found


def test_a_public_endpoint_without_a_token_needs_its_own_confirmation(project, monkeypatch, capsys):
    from jupyter_mlx.cli import main

    root = project.project.root
    folder = root / ".mlx" / "endpoints" / "open"
    monkeypatch.chdir(root)
    deploy = ["deploy", "model.ipynb@v1", "--function", "predict", "--name", "open"]
    for command in (deploy, ["serve", "model.ipynb@v1", "--function", "predict", "--port", "0"]):
        assert main([*command, "--host", "0.0.0.0", "--no-auth"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.splitlines()) == 1 and "refusing to serve on 0.0.0.0 without a token" in err
        assert "--allow-public-unauthenticated" in err
    assert not folder.exists() and not _processes_mentioning(str(folder))

    assert main([*deploy, "--host", "0.0.0.0", "--no-auth", "--allow-public-unauthenticated"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning: endpoint open listens on 0.0.0.0:") and "NO token" in err
    port = int(out.split("http://0.0.0.0:")[1].split("/")[0])
    try:
        assert request(port, "POST", "/predict", {"values": [1]})[1] == [2.0]  # anyone may call it
        log = (folder / "endpoint.log").read_text()
        assert f"WARNING endpoint open listens on 0.0.0.0:{port}, beyond loopback" in log
        # the confirmation is in the record: a restore (after a crash) and a redeploy with the defaults keep it
        status = json.loads((folder / "status.json").read_text())
        for pid in (status["supervisor_pid"], status["version_pid"]):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while project.endpoints.get("open")[1]["state"] != "down":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert project.endpoints.restore() == ["open"]
        assert request(port, "POST", "/predict", {"values": [1]})[1] == [2.0]
        assert main([*deploy[:1], "model.ipynb@v2", *deploy[2:]]) == 0
        assert "NO token" in capsys.readouterr().err
        assert request(port, "POST", "/predict", {"values": [1]})[1] == [3.0]
    finally:
        project.endpoints.stop("open")
    assert main(["deploy", "model.ipynb@v1", "--function", "predict", "--name", "lan", "--host", "0.0.0.0"]) == 0
    try:
        out, err = capsys.readouterr()
        assert "warning: endpoint lan listens on 0.0.0.0" in err and "callers need its token" in err
    finally:
        project.endpoints.stop("lan")


def test_a_record_without_the_confirmation_is_not_restored_in_public(tmp_path):
    """An endpoint recorded beyond loopback without a token and without the confirmation (written
    by an older version) stays down, and says why."""
    folder = tmp_path / ".mlx" / "endpoints" / "old"
    folder.mkdir(parents=True)
    write_notebook(tmp_path / "double.ipynb", code_cell("def double(x: int) -> int:\n    return 2 * x"))
    deployment = {"notebook": "double.ipynb", "ref": None, "run_id": None, "mode": "function",
                  "function": "double", "deployed_at": 0.0}
    folder.joinpath("record.json").write_text(json.dumps({
        "name": "old", "host": "0.0.0.0", "port": 1, "token_hash": None, "workers": 1, "timeout": 5.0,
        "max_body": 1024, "history": [deployment], "current": 0, "desired": "running"}))
    service = RunService(tmp_path)
    try:
        assert service.endpoints.restore() == []
        record, status = service.endpoints.get("old")
        assert status["state"] == "down" and "refusing to serve on 0.0.0.0 without a token" in status["error"]
        assert not _processes_mentioning(str(folder))
    finally:
        stop_endpoints(tmp_path)
        service.close()
