"""REST API through a real jupyter_server with auth enforced (pytest-jupyter)."""
from __future__ import annotations

import json

import pytest

from jupyter_mlx.config import MLXConfig
from jupyter_mlx.service import RunService
from jupyter_mlx.store import NewRun

from conftest import STORE_BACKENDS, store_url
from rest_client import SERVER_CONFIG, error_of, get_json

from notebooks import write_failing, write_tiny

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def store_config(tmp_path_factory, request):
    """The run index of the module's project: SQLite, then PostgreSQL (every test runs on both)."""
    return {"store_url": store_url(request.param, tmp_path_factory.mktemp("index"), request)}


@pytest.fixture(scope="module")
def recorded_project(tmp_path_factory, store_config):
    """A project with three real runs, made once for the module (kernels are slow)."""
    root = tmp_path_factory.mktemp("project")
    write_tiny(root / "tiny.ipynb")
    write_failing(root / "sub" / "failing.ipynb")
    service = RunService(root, MLXConfig(**store_config))
    service.run("tiny.ipynb", {"x": "2"})
    service.run("tiny.ipynb", {"x": "5"})
    service.run("sub/failing.ipynb")
    service.close()
    return root


@pytest.fixture
def jp_root_dir(recorded_project):
    return recorded_project


@pytest.fixture
def jp_server_config(store_config):
    return {**SERVER_CONFIG, "MLXConfig": store_config}


async def test_list_runs_pages_filters_and_describes_runs(jp_fetch):
    page = await get_json(jp_fetch, "runs")
    assert page["total"] == 3 and page["limit"] == 50 and page["offset"] == 0
    assert [run["ref"] for run in page["runs"]] == ["sub/failing.ipynb@v1", "tiny.ipynb@v2", "tiny.ipynb@v1"]
    tiny = page["runs"][1]
    assert tiny["status"] == "succeeded" and tiny["parameters"] == {"x": 5, "label": "a"}
    assert tiny["overridden"] == ["x"] and tiny["expressions"] == []
    assert tiny["metrics"] == {"score": 10.0, "loss": 1 / 6}
    assert tiny["started_at"].endswith("Z") and tiny["duration"] > 0

    only_tiny = await get_json(jp_fetch, "runs", notebook="tiny.ipynb", limit="1", offset="1")
    assert only_tiny["total"] == 2 and [r["version"] for r in only_tiny["runs"]] == [1]
    failed = await get_json(jp_fetch, "runs", status="failed")
    assert failed["total"] == 1 and failed["runs"][0]["error"]["ename"] == "ValueError"
    assert failed["runs"][0]["error"]["cell_index"] == 2  # no parameters given: none injected
    notebooks = await get_json(jp_fetch, "notebooks")
    assert notebooks == {
        "notebooks": [
            {"notebook": "sub/failing.ipynb", "runs": 1, "last_version": 1},
            {"notebook": "tiny.ipynb", "runs": 2, "last_version": 2},
        ]
    }


async def test_get_one_run_and_its_notebooks(jp_fetch):
    run_id = (await get_json(jp_fetch, "runs", notebook="tiny.ipynb", limit="1"))["runs"][0]["id"]
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["ref"] == "tiny.ipynb@v2"
    assert run["environment"]["kernel"] == "python3" and "pyzmq" in run["environment"]["packages"]
    assert [t["cell_index"] for t in run["cell_timings"]] == [0, 1, 2]
    assert [m["value"] for m in run["metric_history"] if m["name"] == "loss"] == [0.2, 1 / 6]
    executed = await get_json(jp_fetch, "runs", run_id, "notebook")
    assert executed["cells"][2]["outputs"][-1]["text"] == "hello a 5\n"
    response = await jp_fetch("mlx", "runs", run_id, "notebook", params={"source": "1"})
    assert json.loads(response.body)["cells"][0]["source"] == "x = 1  # the input\nlabel = 'a'"
    assert "injected-parameters" not in response.body.decode()


async def test_bad_requests_get_4xx_with_one_error_shape(jp_fetch):
    assert await error_of(jp_fetch, "runs", "0" * 32) == (
        404, {"error": "not_found", "message": f"no run with id {'0' * 32}"}
    )
    code, body = await error_of(jp_fetch, "runs", params={"status": "done"})
    assert (code, body["error"]) == (400, "invalid_request") and "unknown status" in body["message"]
    code, body = await error_of(jp_fetch, "runs", params={"limit": "many"})
    assert (code, body["error"]) == (400, "invalid_request") and "limit" in body["message"]
    code, body = await error_of(jp_fetch, "runs", params={"limit": "0"})
    assert code == 400
    code, body = await error_of(jp_fetch, "runs", params={"notebook": "nope.ipynb"})
    assert (code, body["error"]) == (404, "not_found")


async def test_delete_removes_a_run(jp_fetch, recorded_project, store_config):
    service = RunService(recorded_project, MLXConfig(**store_config))
    doomed = service.store.create_run(NewRun("doomed.ipynb", b"{}"))
    service.close()
    response = await jp_fetch("mlx", "runs", doomed.id, method="DELETE")
    assert response.code == 204
    code, _ = await error_of(jp_fetch, "runs", doomed.id)
    assert code == 404
    code, _ = await error_of(jp_fetch, "runs", doomed.id, method="DELETE")
    assert code == 404


@pytest.mark.parametrize("path", [("runs",), ("notebooks",), ("runs", "0" * 32), ("runs", "0" * 32, "notebook")])
async def test_every_route_requires_authentication(jp_fetch, path):
    code, body = await error_of(jp_fetch, *path, headers={"Authorization": ""})
    assert code == 403 and body["error"] == "forbidden"


async def test_launch_form_describes_the_parameters_and_backends(jp_fetch):
    form = await get_json(jp_fetch, "parameters", notebook="tiny.ipynb")
    assert form["notebook"] == "tiny.ipynb" and form["default_backend"] == "local"
    assert form["parameters"] == [
        {"name": "x", "type": "int", "default": 1, "expression": None, "help": "the input"},
        {"name": "label", "type": "str", "default": "a", "expression": None, "help": ""},
    ]
    assert [b["name"] for b in form["backends"]] == ["local"]
    code, error = await error_of(jp_fetch, "parameters", params={"notebook": "nope.ipynb"})
    assert code == 404 and "does not exist" in error["message"]
    code, error = await error_of(jp_fetch, "parameters")
    assert code == 400 and "'notebook' is required" in error["message"]
