"""Artifacts (the files a run wrote) and input fingerprints compared: sides built directly, the
artifacts' bytes from a dict, so no store, kernel or server is involved."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from PIL import Image

from jupyter_mlx.diff.artifacts import MAX_COMPARE_BYTES, artifact_kind, compare_inputs
from jupyter_mlx.diff.comparison import Comparison, compare_sides
from jupyter_mlx.diff.options import CompareOptions
from jupyter_mlx.diff.report import report_html
from jupyter_mlx.diff.sides import Side, run_side
from jupyter_mlx.diff.terminal import format_comparison
from jupyter_mlx.store.records import Artifact, InputFile, RunRecord

SCHEMA = json.loads((Path(__file__).parent.parent / "jupyter_mlx" / "diff" / "comparison.schema.json").read_text())
NOTEBOOK: dict[str, Any] = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
MEDIA = {".csv": "text/csv", ".png": "image/png", ".json": "application/json", ".txt": "text/plain",
         ".log": "text/plain", ".bin": "application/octet-stream", ".svg": "image/svg+xml"}


def png(changed: int = 0, size: tuple[int, int] = (20, 10)) -> bytes:
    """A white PNG with ``changed`` pixels of its first row black."""
    pixels = np.full((size[1], size[0], 3), 255, np.uint8)
    pixels[0, :changed] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def run(label: str, version: int) -> RunRecord:
    return RunRecord(id=f"run{version}", notebook="train.ipynb", version=version, status="succeeded", parameters={},
                     source_hash="s", notebook_hash=None, git_commit=None, git_dirty=None, environment_id=None,
                     backend="local", host="h", pid=None, queued_at=0.0, started_at=1.0, finished_at=2.0,
                     cell_timings=[], error=None, metrics={}, tags=[], sweep_id=None, parent_id=None,
                     run_folder="overlay")


def side(label: str, files: dict[str, bytes], inputs: list[InputFile] | None = None,
         notebook: dict[str, Any] | None = None) -> Side:
    """A run side whose artifacts are ``files`` (path -> bytes), read back from the dict."""
    artifacts = [Artifact(path, len(data), hashlib.sha256(data).hexdigest(), MEDIA.get(Path(path).suffix, "application/octet-stream"))
                 for path, data in files.items()]
    blobs = {artifact.sha256: files[artifact.path] for artifact in artifacts}
    return run_side(label, run(label, 1 if label == "A" else 2), notebook or NOTEBOOK, [], None,
                    artifacts=artifacts, inputs=inputs, read_artifact=lambda artifact: blobs[artifact.sha256])


def compare(files_a: dict[str, bytes], files_b: dict[str, bytes], **options: Any) -> Comparison:
    comparison = compare_sides(side("A", files_a), side("B", files_b), CompareOptions(**options))
    jsonschema.validate(comparison.to_json(), SCHEMA, format_checker=jsonschema.FormatChecker())
    return comparison


def by_path(comparison: Comparison) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in comparison.to_json()["artifacts"]}


PREDICTIONS_A = b"id,label,score\n1,cat,0.91\n2,dog,0.45\n3,cat,0.88\n"
PREDICTIONS_B = b"id,label,score\n1,cat,0.91\n2,cat,0.45\n3,cat,0.88\n"


def test_a_changed_cell_and_a_changed_plot_are_unexpected_with_their_details() -> None:
    comparison = compare({"out/predictions.csv": PREDICTIONS_A, "plots/loss.png": png(0)},
                         {"out/predictions.csv": PREDICTIONS_B, "plots/loss.png": png(3)})
    found = by_path(comparison)
    table = found["out/predictions.csv"]
    assert (table["kind"], table["judgement"]) == ("table", "changed")
    assert table["detail"]["cells_changed"] == [{"row": "1", "column": "label", "a": "dog", "b": "cat"}]
    image = found["plots/loss.png"]
    assert (image["kind"], image["judgement"]) == ("image", "changed")
    assert image["detail"]["changed_pixels"] == 3 and image["detail"]["changed_fraction"] == pytest.approx(3 / 200)
    assert image["detail"]["mask"]  # the same change mask as image outputs get
    assert comparison.unexpected() == [
        "artifact out/predictions.csv: changed (1 cell changed)",
        "artifact plots/loss.png: changed (1.50% of pixels changed, similarity " + f"{image['detail']['similarity']:.3f})",
    ]
    summary = comparison.summary()
    assert summary["artifacts"]["changed"] == 2 and summary["verdict"] == "unexpected_changes"


@pytest.mark.parametrize("patterns", [("out/*", "*.png"), ("*",)])
def test_ignored_artifacts_pass(patterns: tuple[str, ...]) -> None:
    comparison = compare({"out/predictions.csv": PREDICTIONS_A, "plots/loss.png": png(0), "gone.txt": b"x"},
                         {"out/predictions.csv": PREDICTIONS_B, "plots/loss.png": png(3), "gone.txt": b"x"},
                         ignore_artifacts=patterns)
    assert by_path(comparison)["out/predictions.csv"]["judgement"] == "ignored"
    assert by_path(comparison)["plots/loss.png"]["judgement"] == "ignored"
    assert comparison.unexpected() == []


def test_the_notebooks_metadata_ignores_artifacts_on_top_of_the_callers() -> None:
    notebook = {**NOTEBOOK, "metadata": {"jupyter_mlx": {"compare": {"ignore_artifacts": ["*.png"]}}}}
    a = side("A", {"p.csv": PREDICTIONS_A, "x.png": png(0)})
    b = side("B", {"p.csv": PREDICTIONS_B, "x.png": png(3)}, notebook=notebook)
    options = CompareOptions().with_overrides({"ignore_artifacts": ["p.*"]})
    comparison = compare_sides(a, b, options)
    assert comparison.options.ignore_artifacts == ("p.*", "*.png")
    assert comparison.unexpected() == []
    assert compare_sides(a, side("B", {"p.csv": PREDICTIONS_B, "x.png": png(3)})).unexpected() != []


def test_identical_added_and_removed() -> None:
    comparison = compare({"same.bin": b"\x00\x01", "old.csv": b"a\n1\n"}, {"same.bin": b"\x00\x01", "new.png": png()})
    found = by_path(comparison)
    assert [found[p]["judgement"] for p in ("new.png", "old.csv", "same.bin")] == ["added", "removed", "identical"]
    assert found["new.png"]["a"] is None and found["old.csv"]["b"] is None
    assert comparison.unexpected() == ["artifact new.png: added (only in B, " + f"{len(png())} bytes)",
                                       "artifact old.csv: removed (only in A, 4 bytes)"]
    assert compare({"same.bin": b"\x00"}, {"same.bin": b"\x00"}).unexpected() == []


def test_json_numbers_within_tolerance_and_values_changed_by_path() -> None:
    a = json.dumps({"metrics": {"acc": 0.9, "loss": [0.5, 0.25]}, "name": "m1"}).encode()
    close = json.dumps({"name": "m1", "metrics": {"loss": [0.5, 0.25 + 1e-12], "acc": 0.9}}, indent=2).encode()
    entry = by_path(compare({"r.json": a}, {"r.json": close}, rtol=1e-9))["r.json"]
    assert (entry["kind"], entry["judgement"]) == ("json", "within_tolerance")
    assert entry["detail"]["values_within_tolerance"] == 1 and entry["detail"]["changes"] == []
    changed = json.dumps({"metrics": {"acc": 0.8, "loss": [0.5]}, "name": "m1", "extra/key": True}).encode()
    comparison = compare({"r.json": a}, {"r.json": changed})
    assert by_path(comparison)["r.json"]["detail"]["changes"] == [
        {"path": "/extra~1key", "change": "added", "a": None, "b": True},
        {"path": "/metrics/acc", "change": "changed", "a": 0.9, "b": 0.8},
        {"path": "/metrics/loss/1", "change": "removed", "a": 0.25, "b": None},
    ]
    assert comparison.unexpected() == ["artifact r.json: changed (3 values changed)"]


def test_text_gets_a_unified_diff_and_volatile_text_is_tolerated() -> None:
    a = b"epoch 1\nloss 0.5\ndone\n"
    entry = by_path(compare({"train.log": a}, {"train.log": b"epoch 1\nloss 0.7\ndone\n"}))["train.log"]
    assert (entry["kind"], entry["judgement"]) == ("text", "changed")
    assert "-loss 0.5\n+loss 0.7" in entry["detail"]["diff"]
    stamped = compare({"t.txt": b"at 2024-01-01T10:00:00 ok\n"}, {"t.txt": b"at 2024-05-03T11:22:33 ok\n"})
    assert by_path(stamped)["t.txt"]["judgement"] == "within_tolerance" and stamped.unexpected() == []


def test_binary_and_large_files_are_compared_by_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = by_path(compare({"model.bin": b"\x00\x01"}, {"model.bin": b"\x00\x02\x03"}))["model.bin"]
    assert (entry["kind"], entry["judgement"], entry["detail"]) == ("binary", "changed", {"compared_by": "hash"})
    assert (entry["a"]["size"], entry["b"]["size"]) == (2, 3)
    read: list[str] = []
    a, b = side("A", {"big.csv": PREDICTIONS_A}), side("B", {"big.csv": PREDICTIONS_B})
    b.artifacts = [Artifact("big.csv", MAX_COMPARE_BYTES + 1, "f" * 64, "text/csv")]
    b.read_artifact = lambda artifact: read.append(artifact.path) or b""  # type: ignore[func-returns-value]
    comparison = compare_sides(a, b)
    assert read == []
    assert "compared by hash only" in comparison.to_json()["artifacts"][0]["detail"]["note"]


def test_an_unreadable_artifact_is_a_change_that_says_why() -> None:
    a, b = side("A", {"p.csv": PREDICTIONS_A}), side("B", {"p.csv": PREDICTIONS_B})

    def missing(artifact: Artifact) -> bytes:
        raise FileNotFoundError(f"blob {artifact.sha256[:8]} is missing")

    b.read_artifact = missing
    entry = compare_sides(a, b).to_json()["artifacts"][0]
    assert entry["judgement"] == "changed" and "p.csv of run B could not be read: blob" in entry["detail"]["error"]


def test_kinds_by_suffix_then_media_type() -> None:
    assert artifact_kind("a/b.TSV", None) == "table"
    assert artifact_kind("x.parquet", "application/octet-stream") == "table"
    assert artifact_kind("plot.jpeg", None) == artifact_kind("plot", "image/svg+xml") == "image"
    assert artifact_kind("meta", "application/vnd.foo+json") == "json"
    assert artifact_kind("notes.md", None) == artifact_kind("x", "text/x-python") == "text"
    assert artifact_kind("model.pkl", "application/octet-stream") == "binary"


def test_parquet_cell_by_cell_or_by_hash_without_pyarrow() -> None:
    pd = pytest.importorskip("pandas")
    frames = [pd.DataFrame({"v": [1.0, 2.0]}), pd.DataFrame({"v": [1.0, 2.5]})]
    try:
        files = []
        for frame in frames:
            buffer = io.BytesIO()
            frame.to_parquet(buffer)
            files.append(buffer.getvalue())
    except ImportError:  # no parquet engine: the comparison says it compared by hash
        files = [b"PAR1a", b"PAR1b"]
        entry = by_path(compare({"t.parquet": files[0]}, {"t.parquet": files[1]}))["t.parquet"]
        assert entry["detail"] == {"compared_by": "hash", "note": "parquet compared by hash only (install pyarrow "
                                                                 "to compare it cell by cell)"}
        return
    entry = by_path(compare({"t.parquet": files[0]}, {"t.parquet": files[1]}))["t.parquet"]
    assert entry["detail"]["cells_changed"] == [{"row": "1", "column": "v", "a": "2.0", "b": "2.5"}]


def test_csv_numbers_within_tolerance_and_pandas_index_labels_rows() -> None:
    a = b",x\nr1,1.0\nr2,2.0\n"
    b = b",x\nr2,2.0000000001\nr1,1.0\n"
    entry = by_path(compare({"t.csv": a}, {"t.csv": b}, rtol=1e-6))["t.csv"]
    assert entry["detail"]["cells_within_tolerance"] == 1 and entry["detail"]["reordered"] == ["rows"]


def test_input_fingerprints_are_listed_and_never_unexpected() -> None:
    inputs_a = [InputFile("data/train.csv", 10, 1.0, "a" * 64), InputFile("data/big.bin", 10**9, 1.0, None),
                InputFile("data/gone.csv", 1, 1.0, "c" * 64), InputFile("same.py", 5, 1.0, "d" * 64)]
    inputs_b = [InputFile("data/train.csv", 10, 1.0, "b" * 64), InputFile("data/big.bin", 10**9, 2.0, None),
                InputFile("data/new.csv", 1, 1.0, "e" * 64), InputFile("same.py", 5, 9.0, "d" * 64)]
    comparison = compare_sides(side("A", {}, inputs_a), side("B", {}, inputs_b))
    data = comparison.to_json()
    jsonschema.validate(data, SCHEMA)
    assert [(c["path"], c["status"]) for c in data["inputs"]["changes"]] == [
        ("data/big.bin", "changed"), ("data/gone.csv", "removed"), ("data/new.csv", "added"), ("data/train.csv", "changed")]
    assert data["inputs"]["unchanged"] == 1 and data["summary"]["inputs_changed"] == 4
    assert comparison.unexpected() == []
    assert compare_inputs(None, inputs_b) == {"known": False, "changes": [], "unchanged": 0}


def test_file_sides_have_no_artifacts_and_old_callers_still_work() -> None:
    a = Side("A", "a.ipynb", "file", NOTEBOOK)
    data = compare_sides(a, Side("B", "b.ipynb", "file", NOTEBOOK)).to_json()
    assert data["artifacts"] == [] and data["inputs"]["known"] is False
    assert data["summary"]["artifacts"]["changed"] == 0
    jsonschema.validate(data, SCHEMA)
    assert "artifacts" not in format_comparison(data)


def test_the_terminal_shows_artifacts_and_inputs() -> None:
    a = side("A", {"p.csv": PREDICTIONS_A, "plot.png": png(0), "notes.txt": b"one\n", "same.bin": b"1"},
             [InputFile("data/train.csv", 10, 1.0, "a" * 64)])
    b = side("B", {"p.csv": PREDICTIONS_B, "plot.png": png(3), "notes.txt": b"two\n", "same.bin": b"1"},
             [InputFile("data/train.csv", 10, 1.0, "b" * 64)])
    text = format_comparison(compare_sides(a, b).to_json())
    assert "artifacts: 1 identical, 3 changed" in text
    assert "  p.csv      changed: 1 cell changed" in text
    assert "  plot.png   changed: 1.50% of pixels changed" in text
    assert "      -one\n      +two" in text
    assert "same.bin" not in text
    assert "inputs: data/train.csv changed" in text
    assert "  artifact p.csv: changed (1 cell changed)" in text


def test_the_report_shows_artifacts_with_images_inline() -> None:
    a = side("A", {"p.csv": PREDICTIONS_A, "plot.png": png(0), "notes.txt": b"one\n", "r.json": b'{"a": 1}'},
             [InputFile("data/train.csv", 10, 1.0, "a" * 64)])
    b = side("B", {"p.csv": PREDICTIONS_B, "plot.png": png(3), "notes.txt": b"two\n", "r.json": b'{"a": 2}'},
             [InputFile("data/train.csv", 10, 1.0, "b" * 64)])
    html = report_html(compare_sides(a, b))
    assert 'id="artifacts"' in html and "plot.png" in html
    assert html.count("data:image/png;base64,") >= 3  # A, B and the change mask
    assert "<td class=\"val\">dog</td><td class=\"val\">cat</td>" in html  # the changed cell
    assert "/a" in html and "data/train.csv" in html
    assert 'href="#artifacts"' in html  # the unexpected line links to the section


def test_the_cli_passes_ignore_artifact_patterns_as_it_passes_ignore_patterns() -> None:
    import argparse

    from jupyter_mlx.arguments import compare_arguments, compare_overrides

    parser = argparse.ArgumentParser()
    compare_arguments(parser)
    args = parser.parse_args(["--ignore", "x", "--ignore-artifact", "logs/*", "--ignore-artifact", "*.png"])
    assert compare_overrides(args) == {"ignore_patterns": ["x"], "ignore_artifacts": ["logs/*", "*.png"]}
    assert compare_overrides(parser.parse_args([])) == {}
    with pytest.raises(Exception, match="ignore_artifacts must be a list of strings"):
        CompareOptions().with_overrides({"ignore_artifacts": "logs/*"})


def test_swapping_the_runs_mirrors_the_artifacts() -> None:
    files_a = {"p.csv": PREDICTIONS_A, "r.json": b'{"a": 1, "b": [1]}', "old.txt": b"x", "plot.png": png(0)}
    files_b = {"p.csv": PREDICTIONS_B, "r.json": b'{"a": 2, "c": 3}', "new.txt": b"y", "plot.png": png(5)}
    forward, backward = by_path(compare(files_a, files_b)), by_path(compare(files_b, files_a))
    mirror = {"added": "removed", "removed": "added"}
    assert forward.keys() == backward.keys()
    for path, entry in forward.items():
        assert backward[path]["judgement"] == mirror.get(entry["judgement"], entry["judgement"]), path
        assert (backward[path]["a"], backward[path]["b"]) == (entry["b"], entry["a"])
    assert [(c["path"], c["change"]) for c in backward["r.json"]["detail"]["changes"]] == [
        (c["path"], mirror.get(c["change"], c["change"])) for c in forward["r.json"]["detail"]["changes"]]
    assert backward["plot.png"]["detail"]["changed_pixels"] == forward["plot.png"]["detail"]["changed_pixels"] == 5


def test_a_side_that_cannot_tell_what_it_wrote_compares_no_artifacts():
    """A notebook file, or a run from before run folders: no artifact is 'removed' against it."""
    import dataclasses

    old = side("A", {})
    old.run = dataclasses.replace(old.run, run_folder=None)
    data = compare_sides(old, side("B", {"model.pkl": b"m"})).to_json()
    assert data["artifacts"] == [] and data["summary"]["unexpected"] == []
