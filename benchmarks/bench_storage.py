"""Storage of a 100-run sweep whose charts mostly do not change: at most 25% of papermill's bytes.

The same notebook (three charts and a table that do not depend on the parameters, one chart and
one table that do, metrics) is executed for the same parameter sets twice, both for real:
- subject: ``RunService.run`` into a fresh project store (``.mlx/``: SQLite index + blobs);
- anchor: ``papermill.execute_notebook`` writing one output ``.ipynb`` per run.
Bytes on disk are compared, and the papermill outputs are analysed for duplicate outputs.

Run: ``.venv/bin/python benchmarks/bench_storage.py [--runs 100] [--workers 2]``
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import harness

from jupyter_mlx.service import RunService
from jupyter_mlx.store.blobs import BlobStore

TARGET_SHARE = 0.25
NOTEBOOK = "sweep.ipynb"

SETUP = """\
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from jupyter_mlx import log_metric

plt.rcParams.update({'figure.dpi': 80, 'figure.figsize': (6, 3.5)})"""

DATA = """\
# The data set is fixed: the same in every run of the sweep
data_rng = np.random.default_rng(42)
n = 400
X = np.vstack([data_rng.normal([0, 0], 1.0, (n // 2, 2)), data_rng.normal([2, 1.5], 1.2, (n // 2, 2))])
y = np.repeat([0, 1], n // 2)
data = pd.DataFrame({'x1': X[:, 0], 'x2': X[:, 1], 'label': y})
data.describe().round(3)"""

OVERVIEW = """\
fig, ax = plt.subplots()
for label, group in data.groupby('label'):
    ax.scatter(group['x1'], group['x2'], s=10, label=f'class {label}')
ax.set_xlabel('x1'); ax.set_ylabel('x2'); ax.legend(); ax.set_title('Data set overview')
plt.show()"""

DISTRIBUTIONS = """\
fig, axes = plt.subplots(1, 2)
for ax, column in zip(axes, ['x1', 'x2']):
    for label, group in data.groupby('label'):
        ax.hist(group[column], bins=25, alpha=0.6, label=f'class {label}')
    ax.set_title(f'{column} by class')
axes[0].legend()
plt.show()"""

CORRELATION = """\
fig, ax = plt.subplots(figsize=(4, 3.5))
image = ax.imshow(data.corr(), cmap='coolwarm', vmin=-1, vmax=1)
ax.set_xticks(range(3), data.columns); ax.set_yticks(range(3), data.columns)
fig.colorbar(image); ax.set_title('Feature correlation')
plt.show()"""

TRAIN = """\
# Logistic regression by gradient descent; C is the inverse L2 strength, seed the split and init
rng = np.random.default_rng(seed)
order = rng.permutation(n)
train, test = order[: int(n * 0.7)], order[int(n * 0.7):]
Xb = np.hstack([X, np.ones((n, 1))])
w = rng.normal(0, 0.1, 3)
losses = []
for step in range(200):
    p = 1 / (1 + np.exp(-Xb[train] @ w))
    loss = -np.mean(y[train] * np.log(p + 1e-12) + (1 - y[train]) * np.log(1 - p + 1e-12))
    loss += 0.5 / (C * len(train)) * w[:2] @ w[:2]
    w -= 0.1 * (Xb[train].T @ (p - y[train]) / len(train) + w * np.r_[1, 1, 0] / (C * len(train)))
    losses.append(loss)
    if step % 40 == 0:
        log_metric('loss', float(loss), step=step)
predicted = (1 / (1 + np.exp(-Xb[test] @ w)) > 0.5).astype(int)
accuracy = float(np.mean(predicted == y[test]))
log_metric('accuracy', accuracy)
print(f'accuracy {accuracy:.3f} with C={C} seed={seed}; weights {np.round(w, 3)}')"""

RESULT_CHART = """\
fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
left.plot(losses); left.set_xlabel('step'); left.set_ylabel('loss'); left.set_title('Training loss')
xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 50)
right.scatter(X[test, 0], X[test, 1], c=y[test], s=10, cmap='coolwarm')
right.plot(xs, -(w[0] * xs + w[2]) / w[1], 'k--'); right.set_ylim(X[:, 1].min(), X[:, 1].max())
right.set_title(f'Decision boundary (C={C})')
plt.show()"""

RESULT_TABLE = """\
pd.DataFrame({
    'precision': [np.mean(y[test][predicted == k] == k) if np.any(predicted == k) else 0.0 for k in (0, 1)],
    'recall': [np.mean(predicted[y[test] == k] == k) for k in (0, 1)],
    'support': [int(np.sum(y[test] == k)) for k in (0, 1)],
}, index=['class 0', 'class 1']).round(3)"""


def write_sweep_notebook(path: Path) -> Path:
    """A small realistic experiment: most charts describe the fixed data, one shows the result."""
    return harness.write_notebook(
        path,
        [
            harness.markdown_cell("# A classifier sweep\n\nThe data set is fixed; `C` and `seed` vary."),
            harness.code_cell(
                "C = 1.0  # inverse regularization strength\nseed = 0  # split and init", tags=["parameters"]
            ),
            harness.code_cell(SETUP),
            harness.markdown_cell("## The data"),
            harness.code_cell(DATA),
            harness.code_cell(OVERVIEW),
            harness.code_cell(DISTRIBUTIONS),
            harness.code_cell(CORRELATION),
            harness.markdown_cell("## Train and evaluate"),
            harness.code_cell(TRAIN),
            harness.code_cell(RESULT_CHART),
            harness.code_cell(RESULT_TABLE),
        ],
    )


def parameter_sets(count: int) -> list[dict[str, Any]]:
    """A grid of 20 values of C (log-spaced) by as many seeds as needed."""
    return [{"C": round(10 ** (-2 + 4 * (i % 20) / 19), 4), "seed": i // 20} for i in range(count)]


# -- executing ------------------------------------------------------------------------------
def run_all(function: Callable[[int, dict[str, Any]], Any], sets: list[dict[str, Any]], workers: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, range(len(sets)), sets))


def record_with_service(root: Path, sets: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    from jupyter_mlx.execute.runner import wait_for_kernel_shutdowns

    service = RunService(root)
    seconds, records = harness.timed(lambda: run_all(lambda _, p: service.run(NOTEBOOK, p), sets, workers))
    wait_for_kernel_shutdowns()
    service.close()  # checkpoints the WAL into the database file
    failed = [r.ref for r in records if r.status != "succeeded"]
    if failed:
        raise RuntimeError(f"runs failed: {failed}")
    return {"seconds": seconds, "runs": len(records)}


def execute_with_papermill(source: Path, out_dir: Path, sets: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    import papermill

    out_dir.mkdir()

    def execute(index: int, parameters: dict[str, Any]) -> None:
        # no cwd=: papermill's cwd is a process-wide chdir, unsafe in threads (this notebook reads no files)
        papermill.execute_notebook(
            str(source), str(out_dir / f"run-{index:03d}.ipynb"), parameters=parameters,
            kernel_name="python3", progress_bar=False, log_output=False,
        )

    seconds, _ = harness.timed(lambda: run_all(execute, sets, workers))
    return {"seconds": seconds, "runs": len(sets)}


# -- analysing ------------------------------------------------------------------------------
KINDS = ("images", "other outputs", "notebook structure")


def _output_kind(output: dict[str, Any]) -> str:
    return "images" if any(m.startswith("image/") for m in output.get("data") or {}) else "other outputs"


def papermill_breakdown(out_dir: Path) -> dict[str, Any]:
    """Bytes of the papermill outputs by kind, and how many are duplicates of an earlier output.

    An output counts as a duplicate when an earlier cell or run produced the exact same JSON. Its
    bytes are its JSON as nbformat writes it (indent 1, sorted keys): an estimate within the nesting
    indentation. "notebook structure" is the rest of the files (sources, metadata).
    """
    seen: set[bytes] = set()
    kinds = {kind: {"bytes": 0, "duplicate_bytes": 0} for kind in KINDS}
    total = count = 0
    for path in sorted(out_dir.glob("*.ipynb")):
        total += path.stat().st_size
        for cell in json.loads(path.read_bytes()).get("cells", []):
            for output in cell.get("outputs", []):
                size = len(json.dumps(output, indent=1, sort_keys=True, ensure_ascii=False).encode())
                key = json.dumps(output, sort_keys=True, separators=(",", ":")).encode()
                kind = kinds[_output_kind(output)]
                kind["bytes"] += size
                kind["duplicate_bytes"] += size if key in seen else 0
                seen.add(key)
                count += 1
    kinds["notebook structure"]["bytes"] = total - kinds["images"]["bytes"] - kinds["other outputs"]["bytes"]
    duplicate = sum(kind["duplicate_bytes"] for kind in kinds.values())
    return {
        "file_bytes": total,
        "kinds": kinds,
        "duplicate_output_bytes": duplicate,
        "duplicate_share_of_file_bytes": duplicate / total if total else 0.0,
        "outputs": count,
        "distinct_outputs": len(seen),
    }


def compressed_bytes(out_dir: Path) -> int:
    """The papermill outputs each zlib-compressed as the blob store compresses (level 6)."""
    return sum(len(zlib.compress(p.read_bytes(), 6)) for p in out_dir.glob("*.ipynb"))


def _blob_kind(data: bytes) -> str:
    value = json.loads(data)
    if isinstance(value, dict) and "output_type" in value:
        return _output_kind(value)
    return "notebook structure"  # a skeleton (cells referring to output blobs) or a source snapshot


def store_breakdown(root: Path) -> dict[str, Any]:
    """The store's bytes: the SQLite index (files directly in ``.mlx/``) and the blobs by kind.

    Blobs are read through the blob store (a skeleton's file is compressed against its source).
    """
    store_dir = root / ".mlx"
    blobs = BlobStore(store_dir / "blobs")
    kinds = {kind: {"files": 0, "bytes": 0, "uncompressed_bytes": 0} for kind in KINDS}
    for path in (store_dir / "blobs").rglob("*"):
        if path.is_file():
            data = blobs.get(path.parent.name + path.name)
            kind = kinds[_blob_kind(data)]
            kind["files"] += 1
            kind["bytes"] += path.stat().st_size
            kind["uncompressed_bytes"] += len(data)
    return {
        "total": harness.tree_bytes(store_dir),
        "index_bytes": sum(p.stat().st_size for p in store_dir.iterdir() if p.is_file()),
        "index_tables": index_tables(store_dir / "runs.sqlite"),
        "blobs": harness.tree_bytes(store_dir / "blobs"),
        "blob_kinds": kinds,
    }


def index_tables(database: Path) -> dict[str, dict[str, int]]:
    """Bytes (whole pages) and payload of each table and index of the SQLite file (``dbstat``)."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "SELECT name, SUM(pgsize), SUM(payload) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
    except sqlite3.Error:  # no dbstat in this SQLite build
        return {}
    return {name: {"bytes": size, "payload": payload} for name, size, payload in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs in the sweep (default 100)")
    parser.add_argument("--workers", type=int, default=max(2, min(4, os.cpu_count() or 2)),
                        help="runs executed at once, for both sides (default: cores, 2 to 4)")
    parser.add_argument("--notebook", type=Path,
                        help="sweep this notebook instead (it needs parameters C and seed), e.g. examples/train.ipynb")
    args = parser.parse_args(argv)
    sets = parameter_sets(args.runs)

    with tempfile.TemporaryDirectory(prefix="mlx-bench-storage-") as tmp:
        root = Path(tmp) / "project"
        if args.notebook:
            root.mkdir()
            source = Path(shutil.copy(args.notebook, root / NOTEBOOK))
        else:
            source = write_sweep_notebook(root / NOTEBOOK)
        print(f"{args.runs} runs with {args.workers} workers: RunService.run ...", flush=True)
        recorded = record_with_service(root, sets, args.workers)
        print(f"  {recorded['seconds']:.0f} s; papermill.execute_notebook ...", flush=True)
        executed = execute_with_papermill(source, Path(tmp) / "papermill", sets, args.workers)
        print(f"  {executed['seconds']:.0f} s", flush=True)
        store = store_breakdown(root)
        papermill_bytes = harness.tree_bytes(Path(tmp) / "papermill")
        breakdown = papermill_breakdown(Path(tmp) / "papermill")
        papermill_zlib = compressed_bytes(Path(tmp) / "papermill")

    report(args, store, papermill_bytes, breakdown, papermill_zlib, recorded, executed)
    return 0


def report(
    args: argparse.Namespace,
    store: dict[str, Any],
    papermill_bytes: dict[str, int],
    breakdown: dict[str, Any],
    papermill_zlib: int,
    recorded: dict[str, Any],
    executed: dict[str, Any],
) -> None:
    anchor = papermill_bytes["bytes"]
    share = store["total"]["bytes"] / anchor
    allocated_share = store["total"]["allocated_bytes"] / papermill_bytes["allocated_bytes"]
    rows = []
    for kind in KINDS:
        paper, blobs = breakdown["kinds"][kind], store["blob_kinds"][kind]
        rows.append([kind, paper["bytes"], paper["duplicate_bytes"], blobs["uncompressed_bytes"], blobs["bytes"],
                     blobs["files"], f"{blobs['bytes'] / anchor:.1%}"])
    rows.append(["SQLite index", "", "", "", store["index_bytes"], 1, f"{store['index_bytes'] / anchor:.1%}"])
    rows.append(["total", anchor, breakdown["duplicate_output_bytes"], "", store["total"]["bytes"],
                 store["total"]["files"], f"{share:.1%}"])
    print(f"\nBytes on disk after a sweep of {args.runs} runs of {args.notebook or 'the synthetic notebook'}; papermill: {papermill_bytes['files']} output notebooks "
          f"(anchor); store: .mlx/ (target <= {TARGET_SHARE:.0%} of papermill)")
    harness.print_table(
        ["kind", "papermill", "of which duplicate", "store raw", "store on disk", "files", "of papermill"], rows
    )
    verdict = "within" if share <= TARGET_SHARE else f"MISSED by {(share - TARGET_SHARE) * 100:.1f} points"
    print(f"\nstore / papermill = {share:.1%} ({verdict}; target {TARGET_SHARE:.0%})")
    print(f"allocated on disk (file system blocks): store / papermill = {allocated_share:.1%}")
    print(f"papermill outputs: {breakdown['outputs']:,} outputs, {breakdown['distinct_outputs']:,} distinct; "
          f"duplicates are {breakdown['duplicate_share_of_file_bytes']:.1%} of the file bytes")
    print(f"for reference, papermill's files each zlib-compressed: {papermill_zlib / anchor:.1%}")
    if store["index_tables"]:
        largest = list(store["index_tables"].items())[:4]
        print("SQLite index, largest: " + ", ".join(f"{name} {t['bytes']:,}" for name, t in largest))
    path = harness.write_results("bench_storage" + (f"-{args.notebook.stem}" if args.notebook else ""), {
        "runs": args.runs, "workers": args.workers, "notebook": str(args.notebook or "synthetic"), "target_share": TARGET_SHARE,
        "store_share_of_papermill": share, "store_allocated_share_of_papermill": allocated_share,
        "papermill": papermill_bytes, "papermill_zlib_bytes": papermill_zlib, "store": store,
        "papermill_breakdown": breakdown,
        "execution_seconds": {"service": recorded["seconds"], "papermill": executed["seconds"]},
    })
    print(f"\nresults: {path}")


if __name__ == "__main__":
    sys.exit(main())
