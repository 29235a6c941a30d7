"""``%mlx`` through a real IPython InteractiveShell (in-process and through a real Jupyter server),
and through a real kernel executing a driver notebook (nbclient)."""
from __future__ import annotations

import contextlib
import getpass
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from jupyter_mlx import transport as transports
from jupyter_mlx.ports import free_port

from notebooks import code_cell, write_notebook, write_tiny
from rest_client import SERVER_CONFIG
from sandbox import stop_process, working_in

SERVER_START_TIMEOUT = 60.0


class Shell:
    """An InteractiveShell with the extension loaded; ``cell()`` runs a cell and returns what it printed."""

    def __init__(self) -> None:
        from IPython.core.interactiveshell import InteractiveShell

        self.ip = InteractiveShell.instance()
        self.ip.run_line_magic("load_ext", "jupyter_mlx")

    def cell(self, source: str) -> tuple[Any, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            result = self.ip.run_cell(source)
        return result, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def shell(in_process_ipython: None) -> Shell:
    return Shell()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project with tiny.ipynb, and no Jupyter server anywhere (an empty runtime dir)."""
    root = tmp_path_factory.mktemp("magic")
    write_tiny(root / "tiny.ipynb")
    with working_in(root, tmp_path_factory.mktemp("no-servers")):
        yield root


@pytest.fixture(scope="module")
def recorded(project: Path, shell: Shell) -> dict[str, tuple[Any, str, str]]:
    """A run (x=3) and a sweep (x=1,2) made with the magic, in process: tiny.ipynb v1, v2, v3."""
    return {
        "run": shell.cell("%mlx run tiny.ipynb -p x 3 -p label first"),
        "sweep": shell.cell("%mlx sweep tiny.ipynb -p x 1,2"),
    }


def test_run_falls_back_to_in_process_and_shows_a_summary(recorded: dict[str, Any]) -> None:
    result, out, err = recorded["run"]
    assert result.success, err
    lines = out.splitlines()
    assert lines[0].startswith("in-process (no Jupyter server for this project")
    assert lines[1].startswith("tiny.ipynb@v1 succeeded in ") and lines[1].endswith("score=6 loss=0.25")
    assert "parameters: x=3 label=first" in out and "see: jupyter mlx show tiny.ipynb@v1" in out


def test_sweep_runs_every_combination(recorded: dict[str, Any]) -> None:
    result, out, err = recorded["sweep"]
    assert result.success, err
    assert "2 runs of tiny.ipynb: 2 succeeded" in out
    assert "v2 succeeded  x=1 label=a  -> score=2 loss=0.5" in out and "v3 succeeded  x=2 label=a  -> score=4" in out


def test_runs_is_a_dataframe_with_parameters_and_metrics_as_columns(recorded: dict[str, Any], shell: Shell) -> None:
    result, out, _ = shell.cell("frame = %mlx runs tiny.ipynb -o")
    assert result.success
    frame = shell.ip.user_ns["frame"]
    assert list(frame.index) == ["tiny.ipynb@v3", "tiny.ipynb@v2", "tiny.ipynb@v1"]
    assert list(frame.columns) == ["id", "version", "status", "started_at", "duration", "sweep_id", "user",
                                   "x", "label", "score", "loss"]
    assert set(frame["user"]) == {getpass.getuser()}  # the magic records the OS user, as the CLI does
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert dtypes["version"] == "int64" and dtypes["x"] == "int64" and dtypes["score"] == "float64"
    assert dtypes["started_at"] == "datetime64[ns, UTC]" and dtypes["duration"] == "float64"
    assert frame.loc["tiny.ipynb@v1", "label"] == "first" and frame.loc["tiny.ipynb@v2", "score"] == 2.0
    assert frame.loc["tiny.ipynb@v2", "label"] == "a"  # the default, not NaN
    assert frame["sweep_id"].notna().sum() == 2
    assert "tiny.ipynb@v3" in out and "score" in out  # the table, printed where widgets do not render


def test_diff_shows_the_comparison(recorded: dict[str, Any], shell: Shell) -> None:
    result, out, _ = shell.cell("view = %mlx diff tiny.ipynb@v1 tiny.ipynb@v3 -o")
    assert result.success
    assert "A  tiny.ipynb@v1" in out and "B  tiny.ipynb@v3" in out
    assert out.splitlines()[1].endswith(f"  by {getpass.getuser()}")  # B's header: who ran it
    assert "  x      3 -> 2\n  label  first -> a (default)\n" in out  # v3 ran with label's default: a value
    view = shell.ip.user_ns["view"]
    assert view.comparison is not None and any("metric score" in line for line in view.unexpected())
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"} and "mlx-summary" in bundle["text/html"]


def test_help_reads_like_a_cli(shell: Shell) -> None:
    result, out, err = shell.cell("%mlx --help")
    assert result.success and not err
    assert out.startswith("usage: %mlx [-h] COMMAND ...")
    for command in ("run", "sweep", "runs", "diff", "serve", "cancel"):
        assert f"\n    {command} " in out
    _, out, _ = shell.cell("%mlx sweep --help")
    assert "usage: %mlx sweep" in out and "-p NAME VALUES" in out and "--backend" in out and "--local" in out


@pytest.mark.parametrize(("line", "message"), [
    ("%mlx frobnicate", "UsageError: %mlx: argument COMMAND: invalid choice: 'frobnicate'"),
    ("%mlx run tiny.ipynb -p x", "UsageError: %mlx run: argument -p/--parameter: expected 2 arguments"),
    ("%mlx run tiny.ipynb -p x abc", "UsageError: %mlx run: parameter x='abc' cannot be converted to int"),
    ("%mlx run tiny.ipynb -p nope 1", "UsageError: %mlx run: "),
    ("%mlx sweep tiny.ipynb -p x 1,,2", "UsageError: %mlx sweep: malformed sweep values '1,,2'"),
    ("%mlx run missing.ipynb", "UsageError: %mlx run: notebook missing.ipynb does not exist"),
    ("%mlx run", "UsageError: %mlx run: the following arguments are required: notebook"),
    ("%mlx diff tiny.ipynb@v1 tiny.ipynb@v99", "UsageError: %mlx diff: "),
    ("%mlx run 'tiny.ipynb", "UsageError: %mlx: No closing quotation"),
])
def test_bad_input_is_one_readable_line(project: Path, shell: Shell, line: str, message: str) -> None:
    result, _, err = shell.cell(line)
    assert not result.success  # the cell fails (a papermill driver stops), without a traceback
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_interrupting_the_cell_cancels_its_run(project: Path, shell: Shell) -> None:
    import _thread
    import threading

    write_notebook(project / "slow.ipynb", code_cell("seconds = 30", tags=["parameters"]),
                   code_cell("import time\ntime.sleep(seconds)"))
    timer = threading.Timer(4.0, _thread.interrupt_main)  # what the kernel's stop button does
    # a kernel handles SIGINT; a pytest run in a background job ignores it (interrupt_main then does nothing)
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer.start()
    try:
        result, _, err = shell.cell("%mlx run slow.ipynb")
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, ignored)
    assert not result.success
    assert err == "UsageError: %mlx run: interrupted (runs still open were cancelled)\n"
    assert transports.connect().get_run("slow.ipynb@v1")["status"] == "cancelled"


def test_serve_deploys_a_managed_endpoint(project: Path, shell: Shell) -> None:
    write_notebook(project / "model.ipynb", code_cell("scale = 2", tags=["parameters"]),
                   code_cell("def predict(values: list[float]) -> list[float]:\n    return [v * scale for v in values]"))
    assert shell.cell("%mlx run model.ipynb -p scale 3")[0].success
    result, out, err = shell.cell("endpoint = %mlx serve model.ipynb@v1 --function predict --name magic-model -o")
    assert result.success, err
    endpoint = shell.ip.user_ns["endpoint"]
    try:
        assert f"magic-model: model.ipynb@v1 serving at POST {endpoint['url']}/predict" in out
        assert "  serves the run's captured state (state " in out
        assert f"token (shown once, send 'Authorization: Bearer <token>'): {endpoint['token']}" in out
        request = urllib.request.Request(f"{endpoint['url']}/predict", data=json.dumps({"values": [1, 2]}).encode(),
                                         headers={"Authorization": f"Bearer {endpoint['token']}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read()) == [3, 6]
    finally:
        transports.connect().service.endpoints.stop("magic-model")


# -- through a running Jupyter server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real ``jupyter server`` with jupyter_mlx (auth enforced) serving a project, found through its
    runtime file as a notebook's kernel would find it."""
    root = tmp_path_factory.mktemp("served")
    write_tiny(root / "sub" / "tiny.ipynb")
    home = tmp_path_factory.mktemp("server-home")
    (home / "config").mkdir()
    (home / "config" / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    log = home / "server.log"
    argv = [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}"]
    with log.open("wb") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        # its runtime file written and jupyter_mlx answering: the server a user's kernel would find
        while not (list((home / "runtime").glob("jpserver-*.json")) and _answers(base, token)):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"jupyter server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        with working_in(root / "sub", home / "runtime"):
            yield {"base": base, "token": token, "root": root}
    finally:
        stop_process(process)


def _answers(base: str, token: str) -> bool:
    request = urllib.request.Request(f"{base}mlx/info", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def server_runs(server: dict[str, Any]) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"{server['base']}mlx/runs", headers={"Authorization": f"token {server['token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["runs"]


def test_the_magic_uses_the_jupyter_server_of_the_project(server: dict[str, Any], shell: Shell) -> None:
    result, out, err = shell.cell("handle = %mlx run tiny.ipynb -p x 5 -o")
    assert result.success, err
    assert out.splitlines()[0] == f"via Jupyter server {server['base']} (project {server['root']})"
    assert "sub/tiny.ipynb@v1 succeeded" in out and f"see: {server['base']}lab/tree/sub/tiny.ipynb" in out
    handle = shell.ip.user_ns["handle"]
    assert handle.transport.kind == "server" and handle.metrics == {"score": 10.0, "loss": 1 / 6}
    assert handle.notebook.cells[-1].outputs[-1].text == "hello a 5\n"
    assert [(r["ref"], r["parameters"]) for r in server_runs(server)] == [("sub/tiny.ipynb@v1", {"x": 5, "label": "a"})]
    # through the server: behind its bare token the request's identity is anonymous, so the run is
    # the server's own user's (its OS user)
    assert server_runs(server)[0]["user"] == getpass.getuser() and handle.record["user"] == getpass.getuser()

    result, out, err = shell.cell("%mlx sweep tiny.ipynb -p x 1,2")
    assert result.success, err
    assert "2 runs of sub/tiny.ipynb: 2 succeeded" in out
    assert {r["ref"] for r in server_runs(server)} == {f"sub/tiny.ipynb@v{v}" for v in (1, 2, 3)}
    result, out, _ = shell.cell("%mlx diff tiny.ipynb@v2 tiny.ipynb@v3")
    assert result.success and "A  sub/tiny.ipynb@v2" in out and "  x  1 -> 2" in out
    result, _, err = shell.cell("%mlx run missing.ipynb")
    assert err.startswith("UsageError: %mlx run: notebook sub/missing.ipynb does not exist")


def test_serve_through_the_server(server: dict[str, Any], shell: Shell) -> None:
    write_notebook(server["root"] / "sub" / "model.ipynb", code_cell("scale = 2", tags=["parameters"]),
                   code_cell("def predict(values: list[float]) -> list[float]:\n    return [v * scale for v in values]"))
    assert shell.cell("%mlx run model.ipynb")[0].success
    result, out, err = shell.cell("endpoint = %mlx serve model.ipynb@latest --function predict --name served-model -o")
    assert result.success, err
    endpoint = shell.ip.user_ns["endpoint"]
    try:
        assert f"served-model: sub/model.ipynb@v1 serving at POST {endpoint['url']}/predict" in out
        listed = urllib.request.Request(f"{server['base']}mlx/endpoints", headers={"Authorization": f"token {server['token']}"})
        with urllib.request.urlopen(listed, timeout=10) as response:  # the server manages it
            assert [e["name"] for e in json.loads(response.read())["endpoints"]] == ["served-model"]
    finally:
        stop = urllib.request.Request(f"{server['base']}mlx/endpoints/served-model", method="DELETE",
                                      headers={"Authorization": f"token {server['token']}"})
        urllib.request.urlopen(stop, timeout=30).close()


def test_a_server_of_another_folder_is_not_used(server: dict[str, Any], shell: Shell, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write_tiny(tmp_path / "tiny.ipynb")
    monkeypatch.chdir(tmp_path)
    result, out, err = shell.cell("%mlx runs")
    assert result.success, err
    assert out.startswith("in-process (no Jupyter server for this project") and "no runs" in out
    monkeypatch.chdir(server["root"])
    result, out, err = shell.cell("%mlx runs --local")
    assert out.startswith("in-process (as asked") and "sub/tiny.ipynb@v3" in out  # the same store, read here
    result, out, err = shell.cell("%mlx runs tiny.ipynb --server --filter x=2")
    assert result.success and out.startswith("via Jupyter server") and out.count("sub/tiny.ipynb@v") == 1


# -- a real kernel running a driver notebook ----------------------------------------------------------------
def test_a_driver_notebook_in_a_real_kernel(project: Path, recorded: dict[str, Any], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))  # the kernel finds no server: in-process

    driver = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext jupyter_mlx"),
        nbformat.v4.new_code_cell("%mlx run tiny.ipynb -p x 7"),
        nbformat.v4.new_code_cell("frame = %mlx runs tiny.ipynb --limit 2 -o"),
        nbformat.v4.new_code_cell("print(frame.loc['tiny.ipynb@v4', 'score'], frame['x'].dtype)"),
        nbformat.v4.new_code_cell("%mlx run nowhere.ipynb", metadata={"tags": ["raises-exception"]}),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(driver, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(project)}}).execute()
    load, run, runs, check, bad = driver.cells

    assert not load.outputs
    assert run.outputs[0]["text"].startswith("in-process (no Jupyter server for this project")
    summary = run.outputs[-1]  # the progress widget, replaced by the summary when the run finished
    assert summary["output_type"] == "display_data"
    assert set(summary["data"]) == {"text/plain", "text/html"}
    assert summary["data"]["text/plain"].startswith("tiny.ipynb@v4 succeeded in ")
    assert "score=14" in summary["data"]["text/html"]

    table = runs.outputs[-1]["data"]  # the runs widget, with the DataFrame as its fallbacks
    assert "application/vnd.jupyter.widget-view+json" in table
    assert "tiny.ipynb@v4" in table["text/plain"] and "<table" in table["text/html"]
    assert check.outputs[0]["text"] == "14.0 int64\n"
    assert bad.outputs[-1]["output_type"] == "stream" and bad.outputs[-1]["name"] == "stderr"
    assert bad.outputs[-1]["text"].strip() == "UsageError: %mlx run: notebook nowhere.ipynb does not exist"

    from nbconvert import HTMLExporter

    driver.metadata.pop("widgets", None)  # as JupyterLab saves a notebook by default: no widget state
    page, _ = HTMLExporter().from_notebook_node(driver)
    assert 'class="jupyter-mlx-run"' in page and "tiny.ipynb@v4" in page  # the summaries as HTML
    assert page.count('class="dataframe"') == 1 and "application/vnd.jupyter.widget-view+json" not in page
