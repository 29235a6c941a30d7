"""The artifacts of a run over REST: listed, previewed and downloaded, authenticated (the route-table
test covers auth), never rendered by the browser from the server's origin, 404 for anything else."""
from __future__ import annotations

import hashlib

import pytest

from jupyter_mlx.service import RunService
from notebooks import code_cell, write_notebook
from rest_client import SERVER_CONFIG, error_of, get_json

pytest_plugins = ("pytest_jupyter.jupyter_server",)

WRITER = (
    "open('predictions.csv', 'w').write('id,pred\\n0,1\\n1,3\\n')\n"
    "open('report.html', 'w').write('<script>alert(1)</script>')\n"
    "open('na\\u00efve \"q\".txt', 'w').write('x')\n"
    "open('model.bin', 'wb').write(bytes(range(256)) * 10)"
)


@pytest.fixture(scope="module")
def recorded_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    write_notebook(root / "writer.ipynb", code_cell(WRITER))
    service = RunService(root)
    run = service.run("writer.ipynb")
    service.close()
    assert run.status == "succeeded", run.error
    return root, run


@pytest.fixture
def jp_root_dir(recorded_project):
    return recorded_project[0]


@pytest.fixture
def jp_server_config():
    return SERVER_CONFIG


async def test_a_runs_artifacts_are_listed_previewed_and_downloaded(jp_fetch, recorded_project):
    _, run = recorded_project
    listing = await get_json(jp_fetch, "runs", run.id, "artifacts")
    assert listing["ref"] == "writer.ipynb@v1" and listing["run_folder"] in ("overlay", "copy")
    assert "inputs" not in listing
    paths = {a["path"]: a for a in listing["artifacts"]}
    assert set(paths) == {"predictions.csv", "report.html", 'na\u00efve "q".txt', "model.bin"}
    with_inputs = await get_json(jp_fetch, "runs", run.id, "artifacts", inputs="1")
    assert [f["path"] for f in with_inputs["inputs"]] == ["writer.ipynb"]

    response = await jp_fetch("mlx", "runs", run.id, "artifacts", "model.bin")
    assert hashlib.sha256(response.body).hexdigest() == paths["model.bin"]["sha256"]
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == "attachment; filename=\"model.bin\"; filename*=UTF-8''model.bin"

    page = await jp_fetch("mlx", "runs", run.id, "artifacts", "report.html")
    assert page.body == b"<script>alert(1)</script>"
    assert page.headers["Content-Type"] == "application/octet-stream"  # never text/html from this origin
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Content-Security-Policy"].startswith("sandbox")

    odd = await jp_fetch("mlx", "runs", run.id, "artifacts", 'na\u00efve "q".txt')
    assert odd.headers["Content-Disposition"] == (
        "attachment; filename=\"na_ve _q_.txt\"; filename*=UTF-8''na%C3%AFve%20%22q%22.txt")

    table = await get_json(jp_fetch, "runs", run.id, "previews", "predictions.csv")
    assert (table["kind"], table["columns"], table["rows"]) == ("table", ["id", "pred"], [[0, 1], [1, 3]])
    assert (await get_json(jp_fetch, "runs", run.id, "previews", "model.bin"))["kind"] == "binary"


@pytest.mark.parametrize("path", ["nosuch.txt", "../writer.ipynb", "%2e%2e/writer.ipynb", "predictions.csv/x"])
async def test_a_path_that_is_not_an_artifact_is_404(jp_fetch, recorded_project, path):
    _, run = recorded_project
    for route in ("artifacts", "previews"):
        status, body = await error_of(jp_fetch, "runs", run.id, route, path)
        assert status == 404 and body["error"] == "not_found", body
