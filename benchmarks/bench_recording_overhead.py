"""Recording a run must add under 50 ms to papermill's own execution of the same notebook.

In one process, on a tiny notebook, with the same parameters and kernel, interleaved after a warm-up:
- anchor A: ``papermill.execute_notebook(input, output, parameters=...)``;
- subject B: ``RunService.run(notebook, parameters)`` (execute, then record in the store);
- breakdown C: the service's executor alone (``execute_run``), nothing recorded.
B - A is the target's number (kernel start and shutdown dominate both). B - C and the recording
steps timed with the executor replaced by a stub (no kernel: no kernel noise) show what recording
itself costs. Over the target, or with ``--profile``, cProfile shows where the service spends it.

Run: ``.venv/bin/python benchmarks/bench_recording_overhead.py [--repeats 15]``
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import harness

import jupyter_mlx.service as service_module
from jupyter_mlx.execute.runner import RunResult, RunTask, execute_run, wait_for_kernel_shutdowns
from jupyter_mlx.service import RunService

TARGET_MS = 50.0
NOTEBOOK = "tiny.ipynb"
PARAMETERS = {"x": 3, "label": "b"}
KERNEL = "python3"


def write_tiny(path: Path) -> Path:
    """Parameters x and label; logs a score and a two-point loss series, prints a line."""
    return harness.write_notebook(path, [
        harness.code_cell("x = 1  # the input\nlabel = 'a'", tags=["parameters"]),
        harness.code_cell(
            "from jupyter_mlx import log_metric\n"
            "log_metric('score', x * 2)\n"
            "for step in range(2):\n"
            "    log_metric('loss', 1.0 / (step + x), step=step)\n"
            "print('hello', label, x)"
        ),
    ])


def make_project(root: Path, git: bool) -> None:
    """A project with the tiny notebook; committed to git, as most projects are (git state is recorded)."""
    write_tiny(root / NOTEBOOK)
    if git:
        commands = [["git", "init", "-q"], ["git", "add", NOTEBOOK],
                    ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
                     "commit", "-q", "-m", "tiny notebook"]]
        for command in commands:
            subprocess.run(command, cwd=root, check=True, capture_output=True, timeout=60)


# -- the three ways -------------------------------------------------------------------------
def ways(root: Path, service: RunService) -> dict[str, Callable[[], Any]]:
    import papermill

    outputs = root.parent / "papermill-outputs"
    outputs.mkdir(exist_ok=True)
    counter = iter(range(10**9))
    task = RunTask(NOTEBOOK, (root / NOTEBOOK).read_bytes(), PARAMETERS, root, KERNEL)

    def anchor() -> Any:
        return papermill.execute_notebook(
            str(root / NOTEBOOK), str(outputs / f"run-{next(counter)}.ipynb"), parameters=PARAMETERS,
            kernel_name=KERNEL, progress_bar=False, log_output=False, cwd=str(root),
        )

    def subject() -> Any:
        record = service.run(NOTEBOOK, PARAMETERS, kernel_name=KERNEL)
        if record.status != "succeeded":
            raise RuntimeError(f"{record.ref} {record.status}: {record.error}")
        return record

    return {
        "A papermill.execute_notebook (anchor)": anchor,
        "B RunService.run": subject,
        "C execute_run only (no recording)": lambda: execute_run(task),
    }


def measure(ways_: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Interleave the ways, rotating their order each round so none always goes first."""
    names = list(ways_)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(warmup + repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, _ = harness.timed(ways_[name])
            wait_for_kernel_shutdowns()  # background shutdowns must not slow the next way down
            if round_ >= warmup:
                samples[name].append(seconds)
        print(f"  round {round_ + 1}/{warmup + repeats}" + (" (warm-up)" if round_ < warmup else ""), flush=True)
    return samples


def paired_difference_ms(subject: list[float], anchor: list[float]) -> float:
    """Median of per-round differences: each round's pair shares the machine's state."""
    import statistics

    return statistics.median((s - a) * 1000 for s, a in zip(subject, anchor))


# -- recording alone ------------------------------------------------------------------------
def stub_executor(result: RunResult) -> Callable[..., RunResult]:
    """An executor that returns a real executed result at once, with fresh timestamps."""

    def execute(task: RunTask, on_cell: Any = None, **options: Any) -> RunResult:
        now = time.time()
        return replace(result, started_at=now, finished_at=now)

    return execute


def time_recording(service: RunService, result: RunResult, repeats: int) -> list[float]:
    """``RunService.run`` with the kernel taken out: everything it adds to an execution."""
    samples = []
    with mock.patch.object(service_module, "execute_run", stub_executor(result)):
        for round_ in range(repeats + 3):
            seconds, _ = harness.timed(lambda: service.run(NOTEBOOK, PARAMETERS, kernel_name=KERNEL))
            if round_ >= 3:
                samples.append(seconds)
    return samples


def profile_recording(service: RunService, result: RunResult, runs: int = 30, top: int = 20) -> str:
    """cProfile of the recording steps (stub executor), the top functions by cumulative time."""
    profiler = cProfile.Profile()
    with mock.patch.object(service_module, "execute_run", stub_executor(result)):
        profiler.enable()
        for _ in range(runs):
            service.run(NOTEBOOK, PARAMETERS, kernel_name=KERNEL)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative")
    out.write(f"cProfile of {runs} recorded runs with a stub executor (times are totals over all runs)\n")
    stats.print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds of A, B and C (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--recording-repeats", type=int, default=50,
                        help="timed runs of the recording steps alone (default 50)")
    parser.add_argument("--no-git", action="store_true", help="project outside git (skips git state)")
    parser.add_argument("--profile", action="store_true", help="print the cProfile even within target")
    args = parser.parse_args(argv)
    git = not args.no_git and shutil.which("git") is not None

    with tempfile.TemporaryDirectory(prefix="mlx-bench-overhead-") as tmp:
        root = Path(tmp) / "project"
        make_project(root, git)
        service = RunService(root)
        print(f"{args.warmup} warm-up + {args.repeats} interleaved rounds of A, B, C ...", flush=True)
        samples = measure(ways(root, service), args.repeats, args.warmup)
        result = execute_run(RunTask(NOTEBOOK, (root / NOTEBOOK).read_bytes(), PARAMETERS, root, KERNEL))
        wait_for_kernel_shutdowns()
        recording = time_recording(service, result, args.recording_repeats)
        fingerprint_s, _ = harness.timed(_cold_fingerprint)
        profile = None
        stats = {name: harness.summary_ms(s) for name, s in samples.items()}
        names = list(samples)
        added_ms = paired_difference_ms(samples[names[1]], samples[names[0]])
        recording_ms = harness.summary_ms(recording)["median_ms"]
        if args.profile or added_ms > TARGET_MS or recording_ms > TARGET_MS:
            profile = profile_recording(service, result)
        service.close()

    report(args, git, stats, samples, recording, fingerprint_s, profile)
    return 0


def _cold_fingerprint() -> Any:
    """The kernel environment fingerprint without its cache: what a fresh CLI process computes."""
    from jupyter_mlx.provenance import _read_kernel_environment

    return _read_kernel_environment.__wrapped__(KERNEL)


def report(args: argparse.Namespace, git: bool, stats: dict[str, dict[str, float]], samples: dict[str, list[float]],
           recording: list[float], fingerprint_s: float, profile: str | None) -> None:
    anchor_name, subject_name, executor_name = list(samples)
    anchor_ms = stats[anchor_name]["median_ms"]
    added_ms = paired_difference_ms(samples[subject_name], samples[anchor_name])
    over_executor_ms = paired_difference_ms(samples[subject_name], samples[executor_name])
    recording_stats = harness.summary_ms(recording)
    rows = [[name, s["median_ms"], s["p25_ms"], s["p75_ms"], f"{s['median_ms'] / anchor_ms:.3f}x"]
            for name, s in stats.items()]
    print(f"\nOne run of the tiny notebook, in-process, kernel {KERNEL}; {args.repeats} interleaved rounds"
          f"{'; project in git' if git else ''}")
    harness.print_table(["way", "median ms", "p25 ms", "p75 ms", "vs anchor"], rows)
    verdict = "within" if added_ms < TARGET_MS else "MISSED"
    print(f"\nB - A (median of paired differences): {added_ms:+.1f} ms ({verdict} the {TARGET_MS:.0f} ms target); "
          f"ratio of medians {stats[subject_name]['median_ms'] / anchor_ms:.3f}")
    print(f"B - C (service over its own executor): {over_executor_ms:+.1f} ms")
    print(f"recording steps alone (stub executor, {len(recording)} runs): "
          f"median {recording_stats['median_ms']:.1f} ms, "
          f"p75 {recording_stats['p75_ms']:.1f} ms")
    print(f"kernel environment fingerprint, cold (once per process, overlapped with execution): "
          f"{fingerprint_s * 1000:.0f} ms")
    if profile:
        print("\n" + profile)
    path = harness.write_results("bench_recording_overhead", {
        "repeats": args.repeats, "warmup": args.warmup, "git": git, "target_ms": TARGET_MS,
        "parameters": PARAMETERS, "kernel": KERNEL, "ways": stats,
        "added_ms_paired_median": added_ms,
        "ratio_of_medians": stats[subject_name]["median_ms"] / anchor_ms,
        "service_over_executor_ms_paired_median": over_executor_ms,
        "recording_alone": recording_stats,
        "cold_environment_fingerprint_ms": fingerprint_s * 1000,
        "profile": profile,
    })
    print(f"\nresults: {path}")


if __name__ == "__main__":
    sys.exit(main())
