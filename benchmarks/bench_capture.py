"""What capturing the state of a run's functions costs (issue 15): examples/train.ipynb run with the
capture and without it, alternated on one pre-started kernel pool, in the same run.

    python benchmarks/bench_capture.py [--rounds N]

Reports each way's median run time (as the store records it: kernel start to the end of the
capture), the ratio (target: the capture adds under 5%), and the capture's own time from the
run's manifest.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from harness import REPO, machine, print_table, write_results

from jupyter_mlx.config import MLXConfig
from jupyter_mlx.service import RunService


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="runs each way, alternated (default 8)")
    args = parser.parse_args(argv)

    project = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    shutil.copytree(REPO / "examples", project / "examples")
    durations: dict[bool, list[float]] = {True: [], False: []}
    captured: list[float] = []
    services = {way: RunService(project, MLXConfig(capture_state=way)) for way in (True, False)}
    try:
        for way in (True, False):  # a warm-up run each: imports cached, kernels' files read once
            services[way].run("examples/train.ipynb")
        for round_ in range(args.rounds):
            for way in ((True, False) if round_ % 2 == 0 else (False, True)):
                run = services[way].run("examples/train.ipynb")
                assert run.status == "succeeded", run.error
                durations[way].append(run.duration or 0.0)
                if way:
                    captured.append(run.state["seconds"])
    finally:
        for service in services.values():
            service.close()
        shutil.rmtree(project, ignore_errors=True)

    with_capture, without = statistics.median(durations[True]), statistics.median(durations[False])
    rows = [
        ["run with the capture", len(durations[True]), with_capture * 1000, with_capture / without],
        ["run without it (anchor)", len(durations[False]), without * 1000, 1.0],
        ["the capture itself (in the kernel)", len(captured), statistics.median(captured) * 1000,
         statistics.median(captured) / without],
    ]
    print("examples/train.ipynb, runs alternated; median ms and ratio to the run without the capture")
    print_table(["way", "n", "median ms", "ratio"], rows)
    overhead = with_capture / without - 1
    print(f"capture overhead: {overhead:+.1%} of a run (target: under 5%) -> {'MET' if overhead < 0.05 else 'MISSED'}")
    write_results("bench_capture", {"machine": machine(), "with_capture_s": durations[True],
                                    "without_s": durations[False], "capture_s": captured, "overhead": overhead})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
