"""Run a command while busy loops hog the CPU, to see that timing-sensitive tests hold on a loaded machine.

    python benchmarks/under_load.py [--hogs N] [--repeat K] -- COMMAND...

Starts N processes that spin (default: one per core), runs COMMAND K times (default 1) and
prints each exit status; exits 0 only when every run passed. The hogs are stopped at the end,
whatever happened. For example, the browser tests five times with both cores busy:

    python benchmarks/under_load.py --repeat 5 -- .venv/bin/python -m pytest -m browser
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def spin() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1, help="busy processes (default: the cores)")
    parser.add_argument("--repeat", type=int, default=1, help="times to run the command")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    results = []
    try:
        for attempt in range(1, args.repeat + 1):
            started = time.monotonic()
            status = subprocess.run(command).returncode
            results.append(status)
            print(f"under_load: run {attempt}/{args.repeat} with {args.hogs} busy loops: exit {status} "
                  f"in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join()
    passed = sum(status == 0 for status in results)
    print(f"under_load: {passed}/{len(results)} runs passed", flush=True)
    return 0 if passed == len(results) == args.repeat else 1


if __name__ == "__main__":
    sys.exit(main())
