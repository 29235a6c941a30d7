"""Issue 13 item 6: input that used to raise (500, a traceback) is a 4xx in the one JSON error
shape through REST, one line and exit 2 through the CLI, and nothing is stored."""
from __future__ import annotations

import json

import pytest

from jupyter_mlx.cli import main
from jupyter_mlx.service import RunService

from notebooks import code_cell, notebook, write_tiny
from recording_listener import RecordingListener
from rest_client import SERVER_CONFIG, error_of

pytest_plugins = ("pytest_jupyter.jupyter_server",)

HUGE = "99999999999999999999"  # above 2**63: more than SQLite's integers hold


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """tiny.ipynb with one real run, approved as its baseline, and a notebook whose kernelspec
    names a kernel that is not installed."""
    root = tmp_path_factory.mktemp("bad-input")
    write_tiny(root / "tiny.ipynb")
    odd = notebook(code_cell("x = 1", tags=["parameters"]), code_cell("print(x)"))
    odd["metadata"]["kernelspec"] = {"name": "no-such-kernel", "display_name": "Gone", "language": "python"}
    (root / "odd_kernel.ipynb").write_text(json.dumps(odd))
    service = RunService(root)
    service.run("tiny.ipynb", {"x": "2"})
    service.approve_baseline("tiny.ipynb@v1")
    service.close()
    return root


@pytest.fixture
def jp_root_dir(project):
    return project


@pytest.fixture(scope="module")
def gateway():
    """A stand-in Kernel Gateway that lists the kernelspecs python3 and ir (and refuses the rest)."""
    with RecordingListener(kernelspecs=["python3", "ir"]) as listener:
        yield listener


@pytest.fixture
def jp_server_config(gateway):
    return {**SERVER_CONFIG, "MLXConfig": {"allowed_gateways": [gateway.url]}}


def _stored(root):
    """What the project holds: runs, sweeps, the baseline, endpoint folders."""
    service = RunService(root)
    try:
        page = service.list_runs(limit=1000)
        return ([(r.id, r.status) for r in page.runs], [s.id for s in service.list_sweeps()],
                service.baseline("tiny.ipynb").run_id, sorted(p.name for p in (root / ".mlx").glob("endpoints/*")))
    finally:
        service.close()


def _post(body):
    return {"method": "POST", "body": json.dumps(body)}


def _get(**params):
    return {"params": params}


REST_CASES = [
    # a NUL byte or other characters no file name has, in a notebook path of a JSON body
    ("runs", _post({"notebook": "a\x00.ipynb"}), 400, "invalid_path", "control character"),
    ("runs", _post({"notebook": "a\ud800.ipynb"}), 400, "invalid_path", "no file name can have"),
    ("runs", _post({"notebook": "a" * 5000 + ".ipynb"}), 400, "invalid_path", "not a readable path"),
    ("sweeps", _post({"notebook": "a\x00.ipynb", "grid": {"x": [1, 2]}}), 400, "invalid_path", "control character"),
    ("endpoints", _post({"target": "a\x00.ipynb", "function": "f"}), 400, "invalid_path", "control character"),
    ("endpoints", _post({"target": "tiny\x00.ipynb@v1", "function": "f"}), 400, "invalid_reference", "control"),
    # integers above 2**63, negative or not integers, in run refs and paging
    ("compare", _get(a=f"tiny.ipynb@v{HUGE}", b="tiny.ipynb@v1"), 400, "invalid_reference", "versions are v1"),
    ("compare", _get(a="tiny.ipynb@v99", b="tiny.ipynb@v1"), 404, "not_found", "no run v99"),
    ("check", _get(run=f"tiny.ipynb@v{HUGE}"), 400, "invalid_reference", "versions are v1"),
    ("check", _get(run="tiny.ipynb@v1", baseline=f"tiny.ipynb@v{HUGE}"), 400, "invalid_reference", "versions"),
    ("table", _get(runs=f"tiny.ipynb@v{HUGE}"), 400, "invalid_reference", "versions are v1"),
    ("baselines", _post({"run": f"tiny.ipynb@v{HUGE}"}), 400, "invalid_reference", "versions are v1"),
    ("baselines", _post({"run": "tiny.ipynb@v0"}), 400, "invalid_reference", "versions are v1"),
    ("runs", _get(offset=HUGE), 400, "invalid_request", "offset must be"),
    ("runs", _get(offset="-1"), 400, "invalid_request", "offset must be"),
    ("runs", _get(offset="ten"), 400, "invalid_request", "offset must be an integer"),
    ("runs", _get(limit=HUGE), 400, "invalid_request", "limit must be"),
    ("sweeps", _get(offset=HUGE), 400, "invalid_request", "offset must be"),
    ("table", _get(limit=HUGE), 400, "invalid_request", "limit must be"),
    # unknown kernels: the request's, and the notebook's own kernelspec
    ("runs", _post({"notebook": "tiny.ipynb", "kernel": "nosuch"}), 400, "unknown_kernel", "python3"),
    ("sweeps", _post({"notebook": "tiny.ipynb", "kernel": "nosuch", "grid": {"x": [1, 2]}}), 400, "unknown_kernel",
     "python3"),
    ("runs", _post({"notebook": "odd_kernel.ipynb"}), 400, "unknown_kernel", "notebook's kernel 'no-such-kernel'"),
]


@pytest.mark.parametrize("route, request_kwargs, status, code, message", REST_CASES)
async def test_bad_input_is_a_4xx_in_the_json_error_shape_and_stores_nothing(
    jp_fetch, project, route, request_kwargs, status, code, message
):
    before = _stored(project)
    got, error = await error_of(jp_fetch, route, **request_kwargs)
    assert (got, error["error"]) == (status, code) and message in error["message"], error
    assert _stored(project) == before


@pytest.mark.parametrize(
    "method, parts",
    [("GET", ("nosuch",)), ("GET", ("runs", "xyz", "notebook")), ("POST", ("runs", "0" * 31)),
     ("DELETE", ("sweeps", "nosuch", "more")), ("GET", ("",))],
)
async def test_unknown_paths_under_mlx_are_a_json_404(jp_fetch, project, method, parts):
    before = _stored(project)
    kwargs = {"body": "{}"} if method == "POST" else {}
    got, error = await error_of(jp_fetch, *parts, method=method, **kwargs)
    assert (got, error["error"]) == (404, "not_found") and "openapi.json" in error["message"], error
    assert _stored(project) == before
    got, error = await error_of(jp_fetch, *parts, method=method, headers={"Authorization": ""}, **kwargs)
    assert (got, error["error"]) == (403, "forbidden")  # no token: a 404 would tell which routes exist


async def test_the_kernel_is_checked_against_the_gateways_kernelspecs(jp_fetch, project, gateway):
    before = _stored(project)
    body = {"notebook": "tiny.ipynb", "backend": "gateway", "gateway_url": gateway.url, "kernel": "nosuch"}
    got, error = await error_of(jp_fetch, "runs", method="POST", body=json.dumps(body))
    assert (got, error["error"]) == (400, "unknown_kernel"), error
    assert "kernel 'nosuch' is not on the gateway backend" in error["message"] and "ir, python3" in error["message"]
    assert {(method, path) for method, path, _ in gateway.requests} == {("GET", "/api/kernelspecs")}  # no kernel started
    assert _stored(project) == before


CLI_CASES = [
    (["run", "bad\x01name.ipynb"], "control character"),
    (["run", "a\x00.ipynb"], "control character"),
    (["show", f"tiny.ipynb@v{HUGE}"], "versions are v1"),
    (["diff", "tiny.ipynb@v1", f"tiny.ipynb@v{HUGE}"], "versions are v1"),
    (["baseline", f"tiny.ipynb@v{HUGE}"], "versions are v1"),
    (["runs", "--offset", HUGE], "offset must be"),
    (["run", "tiny.ipynb", "--kernel", "nosuch"], "kernel 'nosuch' is not installed here; kernels: "),
    (["sweep", "tiny.ipynb", "-p", "x", "1,2", "--kernel", "nosuch"], "kernel 'nosuch' is not installed here"),
    (["run", "odd_kernel.ipynb"], "the notebook's kernel 'no-such-kernel' (its metadata.kernelspec) is not installed"),
]


@pytest.mark.parametrize("argv, message", CLI_CASES)
def test_bad_input_on_the_command_line_is_one_line_and_exit_2(project, monkeypatch, capsys, argv, message):
    before = _stored(project)
    monkeypatch.chdir(project)
    status = main(argv)
    out, err = capsys.readouterr()
    assert (status, out) == (2, "") and err.count("\n") == 1 and message in err, err
    assert "python3" in err or "kernel" not in message
    assert _stored(project) == before


def test_one_table_gives_the_code_of_a_bare_http_status():
    from jupyter_mlx.errors import HTTP_STATUS, error_code_of_status

    statuses = (400, 401, 403, 404, 405, 413, 418, 500, 502, 504)
    assert [error_code_of_status(status) for status in statuses] == [
        "invalid_request", "unauthorized", "forbidden", "not_found", "method_not_allowed", "body_too_large",
        "invalid_request", "server_error", "bad_gateway", "timeout",
    ]
    assert HTTP_STATUS["unknown_kernel"] == 400 and HTTP_STATUS["endpoint_unreachable"] == 502
