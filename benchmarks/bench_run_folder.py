"""Run folders (issue 14): set-up per run, capture of what a run wrote, storage of a sweep's artifacts,
and the sweep's speed, each against an anchor measured in the same run.

1. Set-up: ``open_run_folder(..., "overlay")`` on a project of ``--size`` bytes in ``--files`` files
   (random bytes, in subfolders) against ``shutil.copytree`` of it and the ``copy`` strategy, in
   interleaved rounds; the same overlay on a project of as many files and ``--small-size`` bytes, to
   show that its set-up does not grow with the bytes. Teardown (``close``) is timed apart.
   Target: overlay set-up < 50 ms.
2. Capture: a run writes ``--capture-files`` files of ``--capture-size`` bytes in all into its
   overlay folder; ``collect()`` stores them into a fresh ``BlobStore``. Random and compressible
   (CSV-like) content; anchors: the same listing, each file read once, hashed and written (raw, and
   through zlib level 6). Target: < 1 s.
3. Storage: a real ``RunService`` sweep of ``--runs`` runs of a notebook writing ``model.bin`` (1 MiB,
   the same bytes when ``i`` is even) and ``metrics.json``; the artifacts' summed sizes against the
   bytes of their blobs on disk.
4. Sweep: ``--sweep-runs`` runs of ``bench_sweep``'s notebook with ``run_folder="in-place"`` (as before
   run folders; queued with ``submit``, since an in-place sweep is refused above concurrency 1) and
   ``"auto"`` (with ``submit`` too, and with ``sweep``), rotated over ``--sweep-rounds`` rounds.
   Target: auto no slower (wall within 5%, the noise of this machine).

Run: ``.venv/bin/python benchmarks/bench_run_folder.py [--quick] [--files 10000] [--size 1G]
[--small-size 10M] [--runs 100] [--sweep-runs 8] [--parts setup,capture,storage,sweep]``
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import harness

from jupyter_mlx.workdir import open_run_folder
from jupyter_mlx.workdir.artifacts import ArtifactRules, collect

TARGET_SETUP_MS = 50.0
TARGET_CAPTURE_S = 1.0
TARGET_SWEEP_RATIO = 1.05
PARTS = ("setup", "capture", "storage", "sweep")
FULL = {"files": 10_000, "size": "1G", "small_size": "10M", "overlay_repeats": 10, "copy_repeats": 3,
        "capture_files": 100, "capture_size": "100M", "capture_repeats": 5, "runs": 100,
        "sweep_runs": 8, "sweep_rounds": 3}
QUICK = {**FULL, "files": 1_000, "size": "50M", "small_size": "1M", "capture_size": "20M",
         "capture_repeats": 2, "runs": 10, "sweep_runs": 4, "sweep_rounds": 2}
MIB = 1 << 20


def parse_size(text: str) -> int:
    """``1G``, ``10M``, ``512K`` or bytes (binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def verdict(name: str, value: str, ok: bool, detail: str) -> dict[str, Any]:
    print(f"{name}: {value} -> {'MET' if ok else 'MISSED'} ({detail})")
    return {"check": name, "value": value, "met": ok, "detail": detail}


# -- a project of random files ----------------------------------------------------------------------
def make_project(root: Path, files: int, size: int) -> None:
    """``files`` files of random bytes, ``size`` in all, 100 to a folder, two levels deep."""
    each, extra = divmod(size, files)
    for index in range(files):
        path = root / f"data{index // 1000:02d}" / f"part{index // 100 % 10}" / f"file{index:05d}.bin"
        if index % 100 == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(each + (index < extra)))
    os.sync()  # its write-back must not land in the timings


def settle() -> None:
    """Untimed, between measures: flush the writes of the last one (a 1 GB copy's write-back)."""
    os.sync()


# -- 1. set-up per run --------------------------------------------------------------------------
def time_overlay(project: Path, base: Path, run_id: str) -> tuple[float, float]:
    """(set-up, close) seconds of one overlay run folder."""
    start = time.perf_counter()
    folder = open_run_folder(project, run_id, "overlay", base)
    opened = time.perf_counter()
    try:
        assert folder.strategy == "overlay" and os.path.ismount(folder.view), "not an overlay"
    finally:
        folder.close()
    return opened - start, time.perf_counter() - opened


def time_copy_strategy(project: Path, base: Path, run_id: str) -> tuple[float, float]:
    start = time.perf_counter()
    folder = open_run_folder(project, run_id, "copy", base)
    opened = time.perf_counter()
    try:
        assert folder.strategy == "copy", folder.strategy
    finally:
        folder.close()
    return opened - start, time.perf_counter() - opened


def time_copytree(project: Path, target: Path) -> tuple[float, float]:
    """(copy, remove) seconds of a plain ``shutil.copytree``."""
    start = time.perf_counter()
    try:
        shutil.copytree(project, target, symlinks=True)
        copied = time.perf_counter()
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return copied - start, time.perf_counter() - copied


def bench_setup(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    big, small, base = work / "project-big", work / "project-small", work / "runs"
    print(f"making the projects: {args.files:,} files of {human(args.size)} and of {human(args.small_size)} ...")
    made, _ = harness.timed(lambda: make_project(big, args.files, args.size))
    make_project(small, args.files, args.small_size)
    for project, name in ((big, "warm-big"), (small, "warm-small")):  # untimed: first mount, imports
        time_overlay(project, base, name)
    ways: dict[str, list[float]] = {}
    teardown: dict[str, list[float]] = {}

    def record(way: str, times: tuple[float, float]) -> None:
        ways.setdefault(way, []).append(times[0])
        teardown.setdefault(way, []).append(times[1])

    rounds = args.copy_repeats
    counter = iter(range(1_000_000))
    for round_ in range(rounds):
        overlays = args.overlay_repeats // rounds + (round_ < args.overlay_repeats % rounds)
        for _ in range(overlays):
            record("overlay, big", time_overlay(big, base, f"o{next(counter)}"))
            record("overlay, small", time_overlay(small, base, f"o{next(counter)}"))
        copies = [("copytree, big", lambda: time_copytree(big, work / "copy")),
                  ("copy strategy, big", lambda: time_copy_strategy(big, base, f"c{next(counter)}")),
                  ("copytree, small", lambda: time_copytree(small, work / "copy"))]
        shift = round_ % len(copies)
        for way, run in copies[shift:] + copies[:shift]:
            record(way, run())
            settle()
        print(f"  round {round_ + 1}/{rounds}: overlay big {median_ms(ways['overlay, big']):.1f} ms, "
              f"copytree big {median_ms(ways['copytree, big']):.0f} ms")
    return {"files": args.files, "bytes": args.size, "small_bytes": args.small_size, "make_s": made,
            "setup_s": ways, "teardown_s": teardown}


def report_setup(result: dict[str, Any]) -> list[dict[str, Any]]:
    ways, teardown = result["setup_s"], result["teardown_s"]
    overlay = statistics.median(ways["overlay, big"])
    print(f"\n1. Set-up of a run's folder: {result['files']:,} files, big = {human(result['bytes'])}, "
          f"small = {human(result['small_bytes'])} (made in {result['make_s']:.0f} s); medians; copies read a "
          "warm page cache and their write-back is flushed outside the clock (a lower bound for copying)")
    rows = [[way, len(times), median_ms(times), min(times) * 1000, max(times) * 1000,
             median_ms(teardown[way]), f"{statistics.median(times) / overlay:.1f}x"] for way, times in ways.items()]
    harness.print_table(["way", "n", "set-up ms", "min ms", "max ms", "teardown ms", "/ overlay big"], rows)
    small = statistics.median(ways["overlay, small"])
    copytree = statistics.median(ways["copytree, big"])
    print(f"overlay set-up, {human(result['bytes'])} vs {human(result['small_bytes'])} in as many files: "
          f"{overlay / small:.2f}x (copytree: {copytree / statistics.median(ways['copytree, small']):.1f}x)")
    return [
        verdict("overlay set-up < 50 ms", f"{overlay * 1000:.1f} ms", overlay * 1000 < TARGET_SETUP_MS,
                f"close {median_ms(teardown['overlay, big']):.1f} ms apart"),
        verdict("copytree / overlay set-up", f"{copytree / overlay:.0f}x", copytree > overlay,
                f"{copytree * 1000:.0f} ms / {overlay * 1000:.1f} ms"),
    ]


# -- 2. capture of a run's files ---------------------------------------------------------------------
def csv_lines(rng: random.Random, count: int) -> list[bytes]:
    return [f"{step},{rng.random():.6f},{rng.gauss(0, 1):.6f},{rng.choice(('train', 'valid'))}\n".encode()
            for step in range(count)]


def write_outputs(view: Path, files: int, size: int, kind: str) -> None:
    """What a run writes: ``files`` files, ``size`` bytes in all, random or CSV-like (each file its own)."""
    out = view / "outputs"
    out.mkdir()
    each = size // files
    lines = csv_lines(random.Random(0), 50_000) if kind == "compressible" else []
    for index in range(files):
        if kind == "random":
            data = os.urandom(each)
        else:
            picked = random.Random(index).choices(lines, k=each // 30 + 1)
            data = b"".join(picked)[:each]
        (out / f"part{index:03d}.{'bin' if kind == 'random' else 'csv'}").write_bytes(data)
    settle()


def copy_hashed(written: Iterator[Any], target: Path, compress: bool) -> None:
    """The anchor: each file read once in 1 MiB chunks, SHA-256, written (through zlib 6 or not)."""
    target.mkdir()
    for item in sorted(written, key=lambda w: w.path):
        digest = hashlib.sha256()
        compressor = zlib.compressobj(6) if compress else None
        with open(item.file, "rb") as reader, open(target / item.path.replace("/", "_"), "wb") as writer:
            while chunk := reader.read(MIB):
                digest.update(chunk)
                writer.write(compressor.compress(chunk) if compressor else chunk)
            if compressor:
                writer.write(compressor.flush())


def capture_ways(folder: Any) -> list[tuple[str, Callable[[Path], Any]]]:
    """The ways of storing what a run wrote into ``target``: ``collect()``, then the anchors."""
    from jupyter_mlx.store.blobs import BlobStore

    return [
        ("collect() into a BlobStore", lambda t: collect(folder.written(), ArtifactRules(), BlobStore(t).put_file)),
        ("anchor: read + sha256 + write", lambda t: copy_hashed(folder.written(), t, False)),
        ("anchor: read + sha256 + zlib 6 + write", lambda t: copy_hashed(folder.written(), t, True)),
    ]


def bench_capture(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    project = work / "project-capture"
    project.mkdir()
    (project / "train.ipynb").write_text("{}")
    folders = {}
    times: dict[str, dict[str, list[float]]] = {}
    stored: dict[str, int] = {}
    target = work / "capture-store"
    try:
        for kind in ("random", "compressible"):
            folders[kind] = open_run_folder(project, f"capture-{kind}", "overlay", work / "runs")
            write_outputs(folders[kind].view, args.capture_files, args.capture_size, kind)
        for repeat in range(args.capture_repeats):
            for kind in ("random", "compressible")[::1 if repeat % 2 == 0 else -1]:
                ways = capture_ways(folders[kind])
                shift = repeat % len(ways)
                for way, run in ways[shift:] + ways[:shift]:
                    try:
                        seconds, found = harness.timed(lambda: run(target))
                        if found is not None:  # collect(): every file kept, and what the store holds
                            assert len(found.artifacts) == args.capture_files, found.notes
                            stored[kind] = harness.tree_bytes(target)["bytes"]
                        times.setdefault(kind, {}).setdefault(way, []).append(seconds)
                    finally:
                        shutil.rmtree(target, ignore_errors=True)
                    settle()
    finally:
        for folder in folders.values():
            folder.close()
    return {"files": args.capture_files, "bytes": args.capture_size, "times_s": times, "stored_bytes": stored}


def report_capture(result: dict[str, Any]) -> list[dict[str, Any]]:
    print(f"\n2. Capture: {result['files']} files, {human(result['bytes'])} written by a run into its overlay folder, "
          "stored into a fresh BlobStore (medians)")
    rows, checks = [], []
    for kind, ways in result["times_s"].items():
        ours = statistics.median(ways["collect() into a BlobStore"])
        for way, seconds in ways.items():
            rows.append([kind, way, len(seconds), statistics.median(seconds) * 1000,
                         f"{ours / statistics.median(seconds):.2f}x",
                         f"{result['bytes'] / statistics.median(seconds) / MIB:.0f}"])
        stored = result["stored_bytes"][kind]
        checks.append(verdict(f"collect() of {kind} content < 1 s", f"{ours:.2f} s", ours < TARGET_CAPTURE_S,
                              f"stored {human(stored)} = {stored / result['bytes']:.0%} of the bytes"))
    harness.print_table(["content", "way", "n", "ms", "collect / way", "MiB/s"], rows)
    return checks


# -- 3. storage of a sweep's artifacts ---------------------------------------------------------------
MODEL_NOTEBOOK = [
    harness.code_cell("i = 0", tags=["parameters"]),
    harness.code_cell(
        "import json, random\n"
        "model = random.Random(0 if i % 2 == 0 else i).randbytes(1 << 20)  # the same model in even runs\n"
        "with open('model.bin', 'wb') as f:\n"
        "    f.write(model)\n"
        "with open('metrics.json', 'w') as f:\n"
        "    json.dump({'i': i, 'loss': 1 / (1 + i)}, f)"
    ),
]


def bench_storage(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from jupyter_mlx.config import MLXConfig
    from jupyter_mlx.execute.kernels import wait_for_kernel_shutdowns
    from jupyter_mlx.service import RunService

    project = work / "project-storage"
    harness.write_notebook(project / "model.ipynb", MODEL_NOTEBOOK)
    service = RunService(project, MLXConfig(run_folders_dir=str(work / "runs-storage")))
    try:
        start = time.perf_counter()
        _, queued = service.sweep("model.ipynb", {"grid": {"i": list(range(args.runs))}}, confirm=True)
        records = service.wait(queued, poll=0.05)
        wall = time.perf_counter() - start
        bad = [r for r in records if r.status != "succeeded"]
        if bad:
            raise RuntimeError(f"{len(bad)} runs did not succeed: {bad[0].ref} {bad[0].error}")
        artifacts = {r.id: service.store.artifacts(r.id) for r in records}
        blobs = service.store.blobs
        digests = {a.sha256 for found in artifacts.values() for a in found}
        on_disk = [blobs.path(d).stat() for d in digests]
        result = {
            "runs": args.runs, "wall_s": wall, "run_folders": sorted({r.run_folder or "" for r in records}),
            "artifacts": sum(len(found) for found in artifacts.values()),
            "artifact_bytes": sum(a.size for found in artifacts.values() for a in found),
            "distinct_models": len({a.sha256 for found in artifacts.values() for a in found if a.path == "model.bin"}),
            "artifact_blobs": len(digests),
            "artifact_blob_bytes": sum(s.st_size for s in on_disk),
            "artifact_blob_allocated": sum(s.st_blocks * 512 for s in on_disk),
            "all_blobs": harness.tree_bytes(blobs.root), "store": harness.tree_bytes(project / ".mlx"),
        }
        missing = [r.ref for r in records if {a.path for a in artifacts[r.id]} != {"model.bin", "metrics.json"}]
        if missing:
            raise RuntimeError(f"runs without their two artifacts: {missing[:5]}")
    finally:
        service.close()
        wait_for_kernel_shutdowns()
    return result


def report_storage(result: dict[str, Any]) -> list[dict[str, Any]]:
    expected_models = result["runs"] // 2 + (1 if result["runs"] > 0 else 0)  # one even model + each odd
    ratio = result["artifact_bytes"] / result["artifact_blob_bytes"]
    print(f"\n3. Storage: a {result['runs']}-run sweep (RunService, run folders {', '.join(result['run_folders'])}, "
          f"{result['wall_s']:.0f} s); model.bin is the same 1 MiB in even runs")
    harness.print_table(["what", "files", "bytes", "MiB"], [
        ["artifacts, summed over runs", result["artifacts"], result["artifact_bytes"], result["artifact_bytes"] / MIB],
        ["their blobs on disk (apparent)", result["artifact_blobs"], result["artifact_blob_bytes"],
         result["artifact_blob_bytes"] / MIB],
        ["their blobs on disk (allocated)", result["artifact_blobs"], result["artifact_blob_allocated"],
         result["artifact_blob_allocated"] / MIB],
        ["all blobs (with notebooks)", result["all_blobs"]["files"], result["all_blobs"]["bytes"],
         result["all_blobs"]["bytes"] / MIB],
        ["whole store (.mlx)", result["store"]["files"], result["store"]["bytes"], result["store"]["bytes"] / MIB],
    ])
    return [verdict("artifact bytes / their blobs' bytes (dedup)", f"{ratio:.2f}x",
                    result["distinct_models"] == expected_models,
                    f"{result['distinct_models']} distinct model.bin, {expected_models} expected")]


# -- 4. the sweep, in place and in run folders -------------------------------------------------------
# An in-place sweep at a concurrency above 1 is refused now (its runs would share the project's
# files), so "as before run folders" queues the same runs one by one with ``submit``: the same queue,
# executor, concurrency and kernel pre-starts (the pool adds up each run's hint), only no sweep record.
SWEEP_WAYS = {"in-place, submit x N (as before run folders)": ("in-place", "submit"),
              "auto, submit x N": ("auto", "submit"),
              "auto, sweep": ("auto", "sweep")}
ANCHOR_WAY, SUBJECT_WAY = "in-place, submit x N (as before run folders)", "auto, submit x N"


def sweep_once(root: Path, way: str, seeds: list[int], runs_dir: Path) -> dict[str, Any]:
    import bench_sweep
    from jupyter_mlx.config import MLXConfig
    from jupyter_mlx.execute.kernels import wait_for_kernel_shutdowns
    from jupyter_mlx.service import RunService

    run_folder, via = SWEEP_WAYS[way]
    service = RunService(root, MLXConfig(run_folder=run_folder, run_folders_dir=str(runs_dir)))
    try:
        concurrency = service.concurrency()
        start = time.perf_counter()
        if via == "sweep":
            _, queued = service.sweep(bench_sweep.NOTEBOOK, {"grid": {"seed": seeds}}, kernel_name=bench_sweep.KERNEL)
        else:
            queued = [service.submit(bench_sweep.NOTEBOOK, {"seed": seed}, kernel_name=bench_sweep.KERNEL)
                      for seed in seeds]
        records = service.wait(queued, poll=0.05)
        wall = time.perf_counter() - start
    finally:
        service.close()
        wait_for_kernel_shutdowns()
    bad = [r for r in records if r.status != "succeeded"]
    if bad:
        raise RuntimeError(f"{len(bad)} runs of {way} did not succeed: {bad[0].ref} {bad[0].error}")
    timings = [bench_sweep.record_timing(r) for r in records]
    return {"wall_s": wall, "concurrency": concurrency, "folders": sorted({r.run_folder or "" for r in records}),
            "overhead_s": [t.overhead for t in timings], "compute_s": sum(t.compute for t in timings)}


def bench_sweep_ways(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import bench_sweep

    root = work / "project-sweep"
    root.mkdir()
    bench_sweep.make_project(root, git=True)
    ways = list(SWEEP_WAYS)
    for way in ways:  # untimed warm-up: imports, the first kernels, the store's creation
        sweep_once(root, way, [0, 1], work / "runs-sweep")
    results: dict[str, list[dict[str, Any]]] = {way: [] for way in ways}
    seeds = list(range(args.sweep_runs))
    for round_ in range(args.sweep_rounds):
        shift = round_ % len(ways)
        for way in ways[shift:] + ways[:shift]:
            results[way].append(sweep_once(root, way, seeds, work / "runs-sweep"))
        print(f"  sweep round {round_ + 1}/{args.sweep_rounds}: "
              + ", ".join(f"{way.split(' (')[0]} {results[way][-1]['wall_s']:.1f} s" for way in ways))
    return {"runs": args.sweep_runs, "rounds": args.sweep_rounds, "sweeps": results}


def report_sweep(result: dict[str, Any]) -> list[dict[str, Any]]:
    sweeps = result["sweeps"]
    walls = {way: statistics.median(s["wall_s"] for s in runs) for way, runs in sweeps.items()}
    anchor = walls[ANCHOR_WAY]
    print(f"\n4. Sweep: {result['runs']} runs of bench_sweep's notebook, {result['rounds']} rounds, ways rotated "
          "(medians; overhead = a run's wall minus its cells)")
    rows = [[way, ", ".join(runs[0]["folders"]), runs[0]["concurrency"], walls[way], f"{walls[way] / anchor:.2f}x",
             statistics.median(o for s in runs for o in s["overhead_s"]) * 1000,
             statistics.median(s["compute_s"] for s in runs) / result["runs"]]
            for way, runs in sweeps.items()]
    harness.print_table(["way", "recorded as", "conc.", "wall s", "/ in-place", "overhead p50 ms", "compute s/run"],
                        rows)
    ratio = walls[SUBJECT_WAY] / anchor
    return [verdict("sweep wall, auto / in-place <= 1.05", f"{ratio:.2f}x", ratio <= TARGET_SWEEP_RATIO,
                    f"{walls[SUBJECT_WAY]:.1f} s / {anchor:.1f} s; auto through sweep(): "
                    f"{walls['auto, sweep'] / anchor:.2f}x")]


# -- the run ------------------------------------------------------------------------------------------
def unmount_leftovers(work: Path) -> list[str]:
    """Mounts still under the work folder (there should be none): unmounted before it is removed."""
    from jupyter_mlx.workdir import mounts

    with open("/proc/self/mountinfo") as info:
        points = [line.split()[4] for line in info]
    left = [p for p in points if p.startswith(str(work) + "/")]
    for point in sorted(left, reverse=True):
        mounts.unmount(Path(point))
    return left


def child_processes() -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                        children.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return children


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 files of 50 MiB, 10-run sweep")
    parser.add_argument("--files", type=int, help="files in the project (default 10,000)")
    parser.add_argument("--size", help="the project's bytes (default 1G)")
    parser.add_argument("--small-size", help="the small project's bytes, as many files (default 10M)")
    parser.add_argument("--overlay-repeats", type=int, help="overlay set-ups per project (default 10)")
    parser.add_argument("--copy-repeats", type=int, help="copies per way, one per round (default 3)")
    parser.add_argument("--capture-files", type=int, help="files a run writes (default 100)")
    parser.add_argument("--capture-size", help="their bytes in all (default 100M)")
    parser.add_argument("--capture-repeats", type=int, help="collects per content (default 5)")
    parser.add_argument("--runs", type=int, help="runs of the storage sweep (default 100, --quick 10)")
    parser.add_argument("--sweep-runs", type=int, help="runs of each timed sweep (default 8)")
    parser.add_argument("--sweep-rounds", type=int, help="rounds of in-place vs auto (default 3)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"which parts (default {','.join(PARTS)})")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("size", "small_size", "capture_size"):
        setattr(args, name, parse_size(getattr(args, name)))
    args.parts = [p for p in args.parts.split(",") if p]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not hasattr(os, "getuid") or os.getuid() != 0:
        print("note: overlay needs the right to mount (root here); the set-up and capture parts will fail without it")
    load_before = os.getloadavg()
    started = time.perf_counter()
    benches = {"setup": (bench_setup, report_setup), "capture": (bench_capture, report_capture),
               "storage": (bench_storage, report_storage), "sweep": (bench_sweep_ways, report_sweep)}
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="bench_run_folder-", dir="/tmp"))
    try:
        for part in args.parts:
            print(f"\n== {part} ==", flush=True)
            results[part] = benches[part][0](args, work)
    finally:
        leftovers = unmount_leftovers(work)
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"\nload average 1/5/15 min: before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}; {os.cpu_count()} cores; "
          f"{time.perf_counter() - started:.0f} s in all")
    verdicts = [v for part in args.parts for v in benches[part][1](results[part])]
    if leftovers:
        print(f"WARNING: mounts left under the work folder (unmounted): {leftovers}")
    alive = child_processes()
    if alive:
        print(f"WARNING: child processes still alive: {alive}")
    path = harness.write_results("bench_run_folder", {
        "args": {k: v for k, v in vars(args).items()}, "load_avg_before": load_before, "load_avg_after": load_after,
        "results": results, "verdicts": verdicts, "leftover_mounts": leftovers, "leftover_children": alive,
    })
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
