"""Issue 16, item 1: a warm run (its kernel forked with the notebook's modules imported) shows what
a cold run shows. Each notebook of a corpus, and every notebook of examples/, runs cold and warm
with the same parameters; the comparison must find no unexpected change."""
from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from jupyter_mlx.config import MLXConfig
from jupyter_mlx.execute.preload import imported_modules, warm_modules
from jupyter_mlx.service import RunService
from notebooks import code_cell, write_notebook

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

CORPUS = {
    "tables.ipynb": [
        code_cell("import numpy as np\nimport pandas as pd"),
        code_cell("rng = np.random.default_rng(3)\nframe = pd.DataFrame(rng.normal(size=(4, 3)), columns=list('abc'))\nframe"),
        code_cell("print(np.arange(6).reshape(2, 3))\nframe.describe().round(3)"),
    ],
    "plots.ipynb": [  # no %matplotlib: the kernel's default backend (inline PNG)
        code_cell("import matplotlib.pyplot as plt\nimport numpy as np"),
        code_cell("plt.plot(np.arange(5) ** 2)\nplt.title('squares')\nplt.show()"),
        code_cell("fig, ax = plt.subplots(figsize=(2, 2))\nax.bar(['a', 'b'], [1, 3])\nfig"),
    ],
    "svg.ipynb": [
        code_cell("%matplotlib inline\n%config InlineBackend.figure_formats = ['svg']\nimport matplotlib\nimport matplotlib.pyplot as plt"),
        code_cell("matplotlib.rcParams['svg.hashsalt'] = 'mlx'  # stable ids in the SVG\nplt.plot([3, 1, 2])\nplt.show()"),
    ],
    "model.ipynb": [
        code_cell("seed = 0", tags=["parameters"]),
        code_cell("from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression\n"
                  "from sklearn.metrics import accuracy_score"),
        code_cell("X, y = load_iris(return_X_y=True)\nmodel = LogisticRegression(max_iter=300).fit(X, y)\n"
                  "print(round(accuracy_score(y, model.predict(X)), 4))\nmodel"),
    ],
    "seaborn.ipynb": [
        code_cell("import seaborn as sns\nimport pandas as pd"),
        code_cell("frame = pd.DataFrame({'x': [1, 2, 3, 4], 'y': [2, 1, 4, 3], 'g': list('abab')})\n"
                  "sns.set_theme(style='whitegrid')\nsns.scatterplot(data=frame, x='x', y='y', hue='g')"),
    ],
    "images.ipynb": [
        code_cell("from PIL import Image, ImageDraw"),
        code_cell("image = Image.new('RGB', (32, 16), 'white')\nImageDraw.Draw(image).line((0, 0, 31, 15), fill='red')\nimage"),
    ],
    "progress.ipynb": [
        code_cell("from tqdm.auto import tqdm\nimport tqdm as tqdm_package"),
        code_cell("total = 0\nfor i in tqdm(range(3), desc='steps'):\n    total += i\nprint(total)"),
    ],
    "widgets.ipynb": [
        code_cell("import ipywidgets as widgets"),
        code_cell("widgets.IntSlider(value=3, description='n')"),
    ],
}


def outputs(service: RunService, run_id: str) -> list[list[str]]:
    return [[key for output in cell.get("outputs", []) for key in output.get("data", {"stream": 0})]
            for cell in service.executed_notebook(run_id)["cells"] if cell["cell_type"] == "code"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every notebook run cold, then warm, in one project: (service, {notebook: (cold, warm)})."""
    root = tmp_path_factory.mktemp("warm")
    for name, cells in CORPUS.items():
        write_notebook(root / name, *cells)
    shutil.copy(EXAMPLES / "train.ipynb", root / "train.ipynb")
    shutil.copy(EXAMPLES / "api.ipynb", root / "api.ipynb")
    notebooks = [*CORPUS, "train.ipynb", "api.ipynb"]
    found: dict[str, list] = {name: [] for name in notebooks}
    for warm in (False, True):
        service = RunService(root, config=MLXConfig(warm_runs=warm))
        try:
            queued = [service.submit(name) for name in notebooks]
            service.wait(queued)
            for name, run in zip(notebooks, queued):
                found[name].append(service.get_run(run.id))
        finally:
            service.close()
    service = RunService(root)
    yield service, found
    service.close()


@pytest.mark.parametrize("notebook", [*CORPUS, "train.ipynb", "api.ipynb"])
def test_a_warm_run_shows_what_a_cold_run_shows(runs, notebook):
    service, found = runs
    cold, warm = found[notebook]
    assert cold.status == warm.status, (cold.error, warm.error)
    comparison = service.compare(cold.id, warm.id)
    assert comparison.unexpected() == [], comparison.unexpected()
    assert outputs(service, cold.id) == outputs(service, warm.id)  # no output appeared or vanished
    if notebook == "api.ipynb":
        assert cold.status == "failed"  # its routes read REQUEST: the same failure both ways
    assert cold.kernel_start["warm"] is False and cold.kernel_start["modules"] == [], cold.kernel_start
    assert cold.kernel_start["cold"] and cold.kernel_start["waited"] >= 0
    expected, _ = warm_modules([c["source"] for c in CORPUS[notebook]] if notebook in CORPUS else [])
    if notebook in CORPUS and expected:
        assert warm.kernel_start["warm"] is True and warm.kernel_start["cold"] is None, warm.kernel_start
        assert set(expected) <= set(warm.kernel_start["modules"]), warm.kernel_start
    assert not any(note.startswith("started") for note in cold.notes + warm.notes)  # a note is of files
    if notebook == "progress.ipynb":  # what was never offered to the zygote is said too
        assert warm.kernel_start["left_out"]["tqdm.auto"] == "it adapts to the notebook frontend at import"


def test_the_images_are_there(runs):
    """The defect that started it all: with matplotlib imported before the kernel configured its
    backend, plt.show() showed nothing."""
    service, found = runs
    cold, warm = found["plots.ipynb"]
    assert outputs(service, warm.id)[1] == ["image/png", "text/plain"]
    assert "image/svg+xml" in outputs(service, found["svg.ipynb"][1].id)[1]
    assert {"matplotlib.pyplot", "numpy"} <= set(warm.kernel_start["modules"]), warm.kernel_start


def test_what_is_never_preloaded_and_why():
    cells = ["from tqdm.auto import tqdm\nimport ipywidgets\nimport torch\nimport numpy as np\nimport os, json\n"
             "from sklearn.linear_model import Ridge\n%matplotlib inline\nfrom . import sibling"]
    assert imported_modules(cells) == ["tqdm.auto", "ipywidgets", "torch", "numpy", "os", "json", "sklearn.linear_model"]
    chosen, left_out = warm_modules(cells)
    assert chosen == ("numpy", "sklearn.linear_model")  # the standard library is the kernel's to import
    assert left_out == {"tqdm.auto": "it adapts to the notebook frontend at import",
                        "ipywidgets": "it adapts to the notebook frontend at import",
                        "torch": "it starts threads, opens sockets or initialises a GPU at import"}


def test_the_projects_own_modules_are_not_preloaded(tmp_path):
    (tmp_path / "features.py").write_text("X = 1\n")
    chosen, left_out = warm_modules(["import features\nimport numpy"], tmp_path)
    assert chosen == ("numpy",) and left_out == {"features": "it is the project's own code"}


UNSAFE = {
    "threaded_mod": "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\nVALUE = 1\n",
    "slow_mod": "import time\ntime.sleep(5)\nVALUE = 2\n",
    "broken_mod": "raise ImportError('not on this machine')\n",
    "files_mod": "import tempfile\nHANDLE = tempfile.TemporaryFile()\nVALUE = 3\n",
    "fine_mod": "VALUE = 4\nSTATE = []\n",
}


@pytest.fixture
def unsafe_project(tmp_path, monkeypatch):
    """Modules on PYTHONPATH (outside the project) that must not be preloaded, and one that may."""
    site = tmp_path / "site"
    site.mkdir()
    for name, source in UNSAFE.items():
        (site / f"{name}.py").write_text(source)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setattr("jupyter_mlx.execute.forked.IMPORT_TIMEOUT", 1.0)
    monkeypatch.setattr("jupyter_mlx.execute.forked.Zygote.refused", {})
    root = tmp_path / "project"
    write_notebook(root / "unsafe.ipynb", code_cell(textwrap.dedent("""\
        import threaded_mod, slow_mod, files_mod, fine_mod
        try:
            import broken_mod
        except ImportError as error:
            print('broken:', error)
        fine_mod.STATE.append(len(fine_mod.STATE))
        print(threaded_mod.VALUE + slow_mod.VALUE + files_mod.VALUE + fine_mod.VALUE, fine_mod.STATE)""")))
    return root


def test_unsafe_modules_are_refused_and_the_runs_say_why(unsafe_project):
    service = RunService(unsafe_project, config=MLXConfig(concurrency=1))
    try:
        first, second = (service.submit("unsafe.ipynb"), service.submit("unsafe.ipynb"))
        service.wait([first, second])
        first, second = service.get_run(first.id), service.get_run(second.id)
    finally:
        service.close()
    for run in (first, second):
        assert run.status == "succeeded", run.error
        printed = service.executed_notebook(run.id)["cells"][0]["outputs"]
        # fine_mod's STATE starts empty in each run: a run's changes to a preloaded module stay in its kernel
        assert "".join(o.get("text", "") for o in printed) == "broken: not on this machine\n10 [0]\n"
    start = second.kernel_start
    assert start["warm"] is True and start["modules"][0] == "fine_mod", start
    why = {"threaded_mod": "its import started thread(s) Thread-", "slow_mod": "its import took longer than 1 s",
           "files_mod": "its import left 1 file(s) or socket(s) open",
           "broken_mod": "its import failed: ImportError: not on this machine"}
    assert all(start["left_out"].get(module, "").startswith(reason) for module, reason in why.items()), start
    assert not set(start["left_out"]) & set(start["modules"]), start


def test_a_killed_zygote_costs_no_run(unsafe_project):
    import signal

    from jupyter_mlx.execute.forked import Zygote

    service = RunService(unsafe_project, config=MLXConfig(concurrency=1))
    try:
        first = service.submit("unsafe.ipynb")
        service.wait([first])
        zygotes = [z for z in Zygote._instances.values() if z._process is not None and z._process.poll() is None]
        assert zygotes
        for zygote in zygotes:
            os.kill(zygote._process.pid, signal.SIGKILL)
            zygote._process.wait()
        runs = [service.submit("unsafe.ipynb") for _ in range(2)]
        service.wait(runs)
        assert [service.get_run(r.id).status for r in runs] == ["succeeded", "succeeded"]
    finally:
        service.close()


def test_a_server_keeps_one_warm_kernel_for_the_notebook_it_just_ran(tmp_path):
    """keep_warm (a server): after a run, one kernel with the notebook's modules waits for the next."""
    import time

    from jupyter_mlx.execute.executor import CancelToken
    from jupyter_mlx.execute.local import LocalExecutor
    from jupyter_mlx.execute.runner import RunTask
    from notebooks import notebook

    path = tmp_path / "nb.ipynb"
    path.write_text(__import__("json").dumps(notebook(code_cell("import numpy\nprint(numpy.int64(2) * 3)"))))
    task = RunTask(notebook=path.name, source=path.read_bytes(), cwd=tmp_path, parameters={}, preload=("numpy",))
    executor = LocalExecutor(concurrency=2, idle_timeout=120, keep_warm=True)
    try:
        first = executor.execute(task, None, CancelToken())
        assert first.status == "succeeded" and first.warm["modules"] == ["numpy"]
        deadline = time.monotonic() + 60
        while executor.pool.warm("python3", ("numpy",)) < 1:
            assert time.monotonic() < deadline, "no kernel was kept warm for the notebook"
            time.sleep(0.05)
        time.sleep(0.5)
        assert executor.pool.warm("python3", ("numpy",)) == 1  # one, not one per core
        assert executor.pool.warm("python3") == 0  # nothing for a module set no run used
        second = executor.execute(task, None, CancelToken())
        assert second.status == "succeeded" and second.warm["modules"] == ["numpy"]
        assert second.notebook["cells"][0]["outputs"][0]["text"] == "6\n"
    finally:
        executor.close()


def test_what_the_last_run_imported_through_the_projects_code_is_learned(tmp_path, monkeypatch):
    """The notebook imports only its own helper (never preloaded), which imports numpy and warns:
    its next run starts with numpy, and the warning is still shown as a cold run shows it."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "helper.py").write_text("import numpy\nimport noisy_mod\nVALUE = int(numpy.int64(7))\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "noisy_mod.py").write_text("import warnings\nwarnings.warn('noisy at import', UserWarning)\n")
    write_notebook(root / "uses.ipynb", code_cell("import helper\nprint(helper.VALUE)"))
    monkeypatch.setenv("PYTHONPATH", str(site))
    service = RunService(root, config=MLXConfig(concurrency=1))
    try:
        first = service.submit("uses.ipynb")
        service.wait([first])
        second = service.submit("uses.ipynb")
        service.wait([second])
        first, second = service.get_run(first.id), service.get_run(second.id)
    finally:
        service.close()
    assert first.status == second.status == "succeeded", second.error
    assert service.compare(first.id, second.id).unexpected() == []
    texts = [o.get("text", "") for o in service.executed_notebook(second.id)["cells"][0]["outputs"]]
    assert any("noisy at import" in text for text in texts) and "7\n" in texts  # the warning, as cold
    start = second.kernel_start
    assert start["warm"] and "numpy" in start["modules"] and "noisy_mod" not in start["modules"]
    assert start["left_out"]["noisy_mod"] == ("its import warns (UserWarning: noisy at import), which a cold "
                                              "kernel shows in the cell")


def test_a_long_run_outlives_its_idle_zygote(tmp_path):
    """A zygote unused for kernel_idle_timeout is retired, but not while a kernel it forked runs:
    its kernels end with it (their parent), and a run longer than the timeout would die."""
    import threading
    import time

    from jupyter_mlx.execute.executor import CancelToken
    from jupyter_mlx.execute.forked import Zygote
    from jupyter_mlx.execute.local import LocalExecutor
    from jupyter_mlx.execute.runner import RunTask, wait_for_kernel_shutdowns
    from notebooks import notebook

    path = tmp_path / "long.ipynb"
    path.write_text(__import__("json").dumps(notebook(
        code_cell("import pathlib, time\npathlib.Path('started').touch()\ntime.sleep(3)\nprint('done')"))))
    task = RunTask(notebook=path.name, source=path.read_bytes(), cwd=tmp_path, parameters={})
    executor = LocalExecutor(concurrency=1, prestart=False)
    results = []
    try:
        runner = threading.Thread(target=lambda: results.append(executor.execute(task, None, CancelToken())))
        runner.start()
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline and runner.is_alive(), results
            time.sleep(0.05)
        busy = [zygote for zygote in Zygote._instances.values() if zygote.has_kernels()]
        assert busy
        Zygote.retire_idle(0)  # idle as a zygote, but its kernel runs
        assert all(zygote in Zygote._instances.values() for zygote in busy)
        runner.join(60)
        wait_for_kernel_shutdowns()
        Zygote.retire_idle(0)  # the run is over: now it goes
        assert not any(zygote in Zygote._instances.values() for zygote in busy)
    finally:
        executor.close()
    assert results[0].status == "succeeded", results[0].error
    assert results[0].notebook["cells"][0]["outputs"][0]["text"] == "done\n"


def test_the_kernel_kept_ready_follows_what_the_last_run_taught(tmp_path):
    """On a server, a notebook's first run teaches modules its cells do not name (imported by its
    own helper): the kernel kept ready is then one with those, so the second run starts warm with
    them at once, and the module set the first run used is let go."""
    import time

    root = tmp_path / "project"
    root.mkdir()
    (root / "helper.py").write_text("import numpy\nVALUE = int(numpy.int64(5))\n")
    write_notebook(root / "taught.ipynb", code_cell("import json\nimport helper\nprint(helper.VALUE)"))
    service = RunService(root, config=MLXConfig(concurrency=2), keep_warm=True)
    try:
        first = service.submit("taught.ipynb")
        service.wait([first])
        pool = next(iter(service._executors.values())).pool
        deadline = time.monotonic() + 60
        while not any("numpy" in key[1] and ready for key, ready in pool._ready.items()):
            assert time.monotonic() < deadline, f"no kernel kept ready with numpy: {pool._ready}"
            time.sleep(0.05)
        assert all(not ready for key, ready in pool._ready.items() if "numpy" not in key[1])  # the old set let go
        second = service.submit("taught.ipynb")
        service.wait([second])
        first, second = service.get_run(first.id), service.get_run(second.id)
    finally:
        service.close()
    assert first.status == second.status == "succeeded", second.error
    assert "numpy" not in first.kernel_start["modules"] and "numpy" in second.kernel_start["modules"]
    assert second.kernel_start["waited"] < 1.0, second.kernel_start  # a kernel was ready for it
    assert service.compare(first.id, second.id).unexpected() == []
