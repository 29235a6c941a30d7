"""Every run in its own folder: parallel runs never share files, the project is never written, and
what a run wrote is kept as artifacts (issue 14). Real kernels, real runs, in-process service."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from jupyter_mlx.config import MLXConfig
from jupyter_mlx.service import RunService
from jupyter_mlx.workdir import mounts, run_folders_dir
from notebooks import code_cell, write_clobber, write_notebook
from sandbox import tree_hash

STRATEGIES = ["overlay", "copy"] if mounts.can_mount(run_folders_dir(Path("/"))) else ["copy"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data" / "deep").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("a,b\n1,2\n")
    (root / "data" / "deep" / "keep.txt").write_text("keep me\n")
    (root / "data" / "gone.txt").write_text("delete me\n")
    (root / "data" / "moved.txt").write_text("move me\n")
    (root / "data" / "short.txt").write_text("truncate me\n")
    write_clobber(root / "clobber.ipynb")
    return root


def service_with(root: Path, **config: object) -> RunService:
    return RunService(root, MLXConfig(**config))


def artifact_text(service: RunService, ref: str, path: str) -> str:
    return b"".join(service.artifact(ref, path)[1]).decode()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_parallel_sweep_of_a_notebook_that_writes_files_gets_each_run_its_own(project, strategy):
    before = tree_hash(project)
    service = service_with(project, concurrency=4, run_folder=strategy)
    try:
        _, runs = service.sweep("clobber.ipynb", {"grid": {"x": [1, 2, 3, 4]}})
        runs = service.wait(runs, timeout=120)
        assert [run.status for run in runs] == ["succeeded"] * 4, [run.error for run in runs]
        for run in runs:
            assert run.run_folder == strategy
            assert artifact_text(service, run.ref, "result.txt") == str(run.parameters["x"])
            printed = service.executed_notebook(run.id)["cells"][2]["outputs"][0]["text"]
            assert printed == f"{run.parameters['x']}\n"  # it read back its own number
    finally:
        service.close()
    assert tree_hash(project) == before
    assert not (project / "result.txt").exists()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_project_is_unchanged_whatever_the_run_does_to_its_inputs(project, strategy):
    write_notebook(project / "data" / "vandal.ipynb", code_cell(
        "import os, pathlib\n"
        "print(open('train.csv').read().strip())\n"  # the notebook's folder: relative paths as before
        "open('train.csv', 'w').write('overwritten')\n"
        "open('deep/keep.txt', 'a').write('appended')\n"
        "os.truncate('short.txt', 3)\n"
        "os.rename('moved.txt', 'renamed.txt')\n"
        "os.remove('gone.txt')\n"
        "os.chmod('deep/keep.txt', 0o600)\n"
        "pathlib.Path('new/sub').mkdir(parents=True)\n"
        "pathlib.Path('new/sub/out.json').write_text('{\"ok\": true}')"
    ))
    before = tree_hash(project)
    service = service_with(project, run_folder=strategy)
    try:
        run = service.run("data/vandal.ipynb")
        assert run.status == "succeeded", run.error
        assert service.executed_notebook(run.id)["cells"][0]["outputs"][0]["text"] == "a,b\n1,2\n"
        files = service.run_files(run.ref)
        assert {a["path"] for a in files["artifacts"]} == {
            "data/train.csv", "data/deep/keep.txt", "data/short.txt", "data/renamed.txt", "data/new/sub/out.json",
        }
        assert artifact_text(service, run.ref, "data/train.csv") == "overwritten"
        assert artifact_text(service, run.ref, "data/deep/keep.txt") == "keep me\nappended"
        assert artifact_text(service, run.ref, "data/short.txt") == "tru"
        assert any("data/gone.txt" in note and "data/moved.txt" in note for note in files["notes"]), files["notes"]
    finally:
        service.close()
    assert tree_hash(project) == before
    assert not any(run_folders_dir(project).glob("*")), "the run's folder is removed after collection"


def test_in_place_is_todays_behaviour_and_a_parallel_sweep_refuses_it(project):
    service = service_with(project, concurrency=2)
    try:
        run = service.run("clobber.ipynb", {"x": 7}, in_place=True)
        assert run.status == "succeeded" and run.run_folder == "in-place"
        assert (project / "result.txt").read_text() == "7"
        assert artifact_text(service, run.ref, "result.txt") == "7"
        with pytest.raises(Exception, match="in-place"):
            service.sweep("clobber.ipynb", {"grid": {"x": [1, 2]}}, in_place=True)
        assert len(service.list_runs().runs) == 1  # the refused sweep recorded nothing
    finally:
        service.close()


def test_what_is_kept_and_what_is_skipped_with_a_note(project):
    write_notebook(project / "writer.ipynb", code_cell(
        "import os, pathlib\n"
        "pathlib.Path('__pycache__').mkdir(); pathlib.Path('__pycache__/m.pyc').write_bytes(b'x')\n"
        "pathlib.Path('.ipynb_checkpoints').mkdir(); pathlib.Path('.ipynb_checkpoints/c.txt').write_text('c')\n"
        "pathlib.Path('big.bin').write_bytes(os.urandom(3000))\n"
        "pathlib.Path('small.txt').write_text('small')\n"
        "os.symlink('/etc/hostname', 'outside-link')\n"
        "open(os.fsdecode(b'bad-\\xff.txt'), 'w').write('x')\n"
        "os.makedirs('/tmp/elsewhere-mlx', exist_ok=True); os.chdir('/tmp/elsewhere-mlx')\n"
        "open('not-mine.txt', 'w').write('elsewhere')"
    ))
    service = service_with(project, artifact_max_file_size=2000)
    try:
        run = service.run("writer.ipynb")
        assert run.status == "succeeded", run.error
        files = service.run_files(run.ref)
        assert [a["path"] for a in files["artifacts"]] == ["small.txt"]
        assert files["artifacts"][0]["media_type"] == "text/plain"
        assert files["artifacts"][0]["sha256"] == hashlib.sha256(b"small").hexdigest()
        notes = "\n".join(files["notes"])
        assert "big.bin skipped" in notes and "per file" in notes
        assert "is not valid UTF-8" in notes and "bad-\\xff.txt" in notes
    finally:
        service.close()


def test_a_failed_run_keeps_what_it_wrote_so_far(project):
    write_notebook(project / "fails.ipynb", code_cell("open('partial.csv', 'w').write('a\\n1\\n')"),
                   code_cell("raise ValueError('boom')"), code_cell("open('never.txt', 'w').write('x')"))
    service = service_with(project)
    try:
        run = service.run("fails.ipynb")
        assert run.status == "failed"
        assert [a["path"] for a in service.run_files(run.ref)["artifacts"]] == ["partial.csv"]
    finally:
        service.close()


def test_a_run_folder_that_cannot_be_made_fails_the_run_with_that_message(project, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    service = service_with(project, run_folders_dir=str(tmp_path / "a-file" / "runs"))
    try:
        run = service.run("clobber.ipynb")
        assert run.status == "failed" and run.error.ename == "RunFolderError"
        assert "could not make the run's folder" in run.error.evalue and "Not a directory" in run.error.evalue
        assert service.run_files(run.ref)["artifacts"] == [] and run.notebook_hash is None
    finally:
        service.close()


def test_the_inputs_fingerprint_reuses_hashes_and_says_what_changed(project, monkeypatch):
    from jupyter_mlx.workdir import fingerprint as fingerprints

    service = service_with(project, input_hash_max_size=1000)
    (project / "data" / "large.bin").write_bytes(b"z" * 5000)
    try:
        first = service.run("clobber.ipynb")
        inputs = {f["path"]: f for f in service.run_files(first.ref)["inputs"]}
        assert inputs["data/train.csv"]["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
        assert inputs["data/large.bin"]["sha256"] is None and inputs["data/large.bin"]["size"] == 5000
        assert not any(path.startswith(".mlx") for path in inputs)

        read = []
        real = fingerprints._sha256
        monkeypatch.setattr(fingerprints, "_sha256", lambda path: read.append(path.name) or real(path))
        (project / "data" / "train.csv").write_text("a,b\n1,3\n")
        second = service.run("clobber.ipynb")
        assert read == ["train.csv"]  # the others' hashes were reused by path, size and mtime
        changed = {f["path"]: f["sha256"] for f in service.run_files(second.ref)["inputs"]}
        assert changed["data/train.csv"] != inputs["data/train.csv"]["sha256"]
    finally:
        service.close()


def test_a_folder_left_by_a_dead_process_is_removed_at_the_next_run(project):
    from jupyter_mlx.workdir.folders import open_run_folder

    base = run_folders_dir(project)
    orphan = open_run_folder(project, "0" * 32, STRATEGIES[0], base)
    os.close(orphan._lock_fd)  # as if its process died: the lock is free, the folder (and mount) stay
    orphan._lock_fd = None
    assert (base / ("0" * 32)).is_dir()
    service = service_with(project)
    try:
        assert service.run("clobber.ipynb").status == "succeeded"
    finally:
        service.close()
    assert not (base / ("0" * 32)).exists()
    assert not os.path.ismount(orphan.view)


def test_every_door_lists_and_gives_an_artifact(project, capsys, monkeypatch):
    from jupyter_mlx import transport as transports
    from jupyter_mlx.cli import main
    from jupyter_mlx.notebook_api import RunHandle

    write_notebook(project / "writes.ipynb", code_cell("n = 1", tags=["parameters"]), code_cell(
        "import json\n"
        "open('predictions.csv', 'w').write(f'id,pred\\n0,{n}\\n')\n"
        "open('odd\\nname\"q.txt', 'w').write('odd')\n"
        "json.dump({'n': n}, open('metrics.json', 'w'))"
    ))
    service = service_with(project)
    try:
        one, two = service.run("writes.ipynb", {"n": 1}), service.run("clobber.ipynb")
        assert one.status == "succeeded", one.error
        found = {run.ref for run in service.list_runs(filter="artifact:predictions.csv").runs}
        assert found == {one.ref}
        assert {run.ref for run in service.list_runs(filter="artifact:*.txt").runs} == {one.ref, two.ref}
        assert service.artifact_preview(one.ref, "predictions.csv")["rows"] == [[0, 1]]
    finally:
        service.close()

    monkeypatch.chdir(project)
    assert main(["artifacts", one.ref]) == 0
    out = capsys.readouterr().out
    assert "3 artifact(s)" in out and "predictions.csv" in out and "its own folder" in out
    assert main(["open", one.ref, "--artifact", "predictions.csv", "-o", str(project / "copy.csv")]) == 0
    assert (project / "copy.csv").read_text() == "id,pred\n0,1\n"
    assert main(["open", one.ref, "--artifact", "../clobber.ipynb"]) == 2
    assert "has no artifact '../clobber.ipynb'" in capsys.readouterr().err
    assert main(["runs", "--filter", "artifact:"]) == 2

    transport = transports.LocalTransport(project)
    try:
        handle = RunHandle(transport, transport.get_run(one.ref))
        frame = handle.artifacts
        assert list(frame["path"]) == ["metrics.json", 'odd\nname"q.txt', "predictions.csv"]
        assert handle.artifact("metrics.json") == b'{"n": 1}'
        assert handle.artifact("predictions.csv", to=project / "p.csv").read_text() == "id,pred\n0,1\n"
    finally:
        transport.close()


def test_ten_thousand_small_files_are_all_kept(project):
    write_notebook(project / "many.ipynb", code_cell(
        "import os\nos.makedirs('out', exist_ok=True)\n"
        "for i in range(10_000):\n    open(f'out/{i}.txt', 'w').write(str(i % 7))"
    ))
    service = service_with(project)
    try:
        run = service.run("many.ipynb")
        assert run.status == "succeeded", run.error
        artifacts = service.store.artifacts(run.id)
        assert len(artifacts) == 10_000 and len({a.sha256 for a in artifacts}) == 7  # 7 distinct contents, 7 blobs
        assert artifact_text(service, run.ref, "out/9999.txt") == str(9999 % 7)
    finally:
        service.close()


def test_check_fails_on_a_changed_predictions_cell_and_image_and_passes_when_they_are_ignored(project, capsys,
                                                                                               monkeypatch):
    from jupyter_mlx.cli import main

    write_notebook(project / "predict.ipynb", code_cell("scale = 1", tags=["parameters"]), code_cell(
        "from PIL import Image\n"
        "rows = [(i, i * 2) for i in range(4)]\n"
        "rows[2] = (2, 4 * scale)\n"
        "open('predictions.csv', 'w').write('id,pred\\n' + ''.join(f'{i},{p}\\n' for i, p in rows))\n"
        "image = Image.new('RGB', (40, 30), 'white')\n"
        "image.paste((0, 0, 255), (0, 0, 10 * scale, 10))\n"
        "image.save('fig.png')"
    ))
    service = service_with(project)
    try:
        one, two = service.run("predict.ipynb"), service.run("predict.ipynb", {"scale": 2})
        assert one.status == two.status == "succeeded", (one.error, two.error)
        comparison = service.compare(one.ref, two.ref)
        judged = {entry["path"]: entry for entry in comparison.to_json()["artifacts"]}
        assert judged["predictions.csv"]["judgement"] == "changed"
        assert [(c["row"], c["column"], c["a"], c["b"]) for c in judged["predictions.csv"]["detail"]["cells_changed"]] \
            == [("2", "pred", "4", "8")]
        assert judged["fig.png"]["judgement"] == "changed" and judged["fig.png"]["kind"] == "image"
    finally:
        service.close()

    monkeypatch.chdir(project)
    assert main(["check", two.ref, "--baseline", one.ref]) == 1
    out = capsys.readouterr().out
    assert "artifact predictions.csv: changed (1 cell changed)" in out and "artifact fig.png: changed" in out
    status = main(["check", two.ref, "--baseline", one.ref, "--ignore-artifact", "predictions.csv",
                   "--ignore-artifact", "*.png"])
    out = capsys.readouterr().out
    assert status == 0 and out.rstrip().endswith("no unexpected change"), out


def test_a_kept_folder_is_said_where_and_never_removed_as_stale(project):
    from jupyter_mlx.workdir.folders import remove_stale

    service = service_with(project, keep_run_folders=True)
    try:
        run = service.run("clobber.ipynb", {"x": 3})
        note = next(note for note in run.notes if "its folder is kept at" in note)
        view = Path(note.split("kept at ")[1].split(" ")[0])
        assert (view / "result.txt").read_text() == "3" and (view / "clobber.ipynb").is_file()
        assert remove_stale(run_folders_dir(project)) == [] and view.is_dir()
    finally:
        service.close()
    if os.path.ismount(view):
        mounts.unmount(view)
    import shutil

    shutil.rmtree(view.parent)


def test_previews_of_tables_json_text_and_what_cannot_be_previewed():
    import io

    import pandas as pd

    from jupyter_mlx.store.records import Artifact
    from jupyter_mlx.workdir.preview import preview

    buffer = io.BytesIO()
    pd.DataFrame({"a": range(60), "b": ["x"] * 60}).to_parquet(buffer)

    def shown(path: str, media_type: str, data: bytes) -> dict:
        return preview(Artifact(path, len(data), "0" * 64, media_type), lambda: data)

    table = shown("t.parquet", "application/vnd.apache.parquet", buffer.getvalue())
    assert (table["kind"], table["columns"], table["total_rows"], len(table["rows"])) == ("table", ["a", "b"], 60, 50)
    assert shown("t.tsv", "text/tab-separated-values", b"a\tb\n1\t2\n")["rows"] == [[1, 2]]
    assert shown("m.json", "application/json", b'{"k": [1, 2]}')["value"] == {"k": [1, 2]}
    text = shown("log.txt", "text/plain", b"y" * 70_000)
    assert text["kind"] == "text" and text["truncated"] and len(text["text"]) == 64 * 1024
    assert shown("fig.png", "image/png", b"\x89PNG")["kind"] == "image"
    bad = shown("bad.json", "application/json", b"{nope")
    assert bad["kind"] == "binary" and bad["reason"].startswith("cannot be previewed: JSONDecodeError")
    assert shown("m.pkl", "application/x-python-pickle", b"\x80")["reason"] == "no preview for this type"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_tool_folders_are_neither_fingerprinted_nor_copied(project, strategy):
    for folder in (".git", ".venv/lib", "node_modules/pkg", "data/__pycache__"):
        (project / folder).mkdir(parents=True)
        (project / folder / "file.txt").write_text("tool")
    write_notebook(project / "look.ipynb", code_cell(
        "import os\nprint(sorted(p for p in ('.git', '.venv', 'node_modules') if os.path.isdir(p)))"))
    service = service_with(project, run_folder=strategy)
    try:
        run = service.run("look.ipynb")
        seen = service.executed_notebook(run.id)["cells"][0]["outputs"][0]["text"]
        # an overlay shows the whole project; a copy leaves the tools' folders out
        assert seen == ("['.git', '.venv', 'node_modules']\n" if strategy == "overlay" else "[]\n")
        inputs = [f["path"] for f in service.run_files(run.ref)["inputs"] or []]
        assert inputs and not any(part in path.split("/") for path in inputs
                                  for part in (".git", ".venv", "node_modules", "__pycache__"))
    finally:
        service.close()


def test_a_full_disk_while_making_the_folder_fails_the_run_and_leaves_nothing(project, monkeypatch):
    import errno

    from jupyter_mlx.workdir import folders

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(folders.shutil, "copytree", full)
    service = service_with(project, run_folder="copy")
    try:
        run = service.run("clobber.ipynb")
        assert run.status == "failed" and run.error.ename == "RunFolderError"
        assert "could not copy the project into the run's folder" in run.error.evalue
        assert "No space left on device" in run.error.evalue
        assert run.notebook_hash is None and service.store.artifacts(run.id) == []
    finally:
        service.close()
    assert not any(run_folders_dir(project).glob("*"))


def test_folders_made_while_others_look_for_stale_ones_are_never_taken_for_stale(project, tmp_path):
    """64 runs from 8 threads failed 2 mounts: a run's remove_stale found another run's lock file
    made but not yet locked, and removed its folder. The lock now appears already locked."""
    import threading

    from jupyter_mlx.workdir.folders import open_run_folder, remove_stale

    base, errors, done = tmp_path / "runs", [], threading.Event()

    def make(worker: int) -> None:
        for i in range(15):
            try:
                folder = open_run_folder(project, f"{worker:02d}{i:030d}", STRATEGIES[0], base)
                assert (folder.cwd_for("clobber.ipynb") / "clobber.ipynb").is_file()
                folder.close()
            except Exception as exc:  # noqa: BLE001 (collected, asserted below)
                errors.append(repr(exc))

    def sweep() -> None:
        while not done.is_set():
            remove_stale(base)

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    workers = [threading.Thread(target=make, args=(w,)) for w in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    done.set()
    sweeper.join(30)
    assert errors == []
    assert list(base.iterdir()) == []
