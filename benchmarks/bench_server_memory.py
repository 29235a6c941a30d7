"""The server's memory over many consecutive sweeps: bounded, or growing with every run?

``bench_sweep.py`` reads the server's RSS after three sweeps of its 1 s notebook; a few hundred
KiB of growth there can be a leak or caches filling (SQLite keeps up to 2 MB of pages per pooled
connection, and the database grows with every run). This runs many more sweeps, of a tiny
notebook (a parameters cell and a print) so they are quick, through a real ``jupyter server``
(``POST /mlx/sweeps``, then ``GET /mlx/sweeps/<id>`` until done), and reads the server's RSS
after each, once its kernels are shut down. A leak grows by the same amount every sweep; caches
grow less and less. Reported: RSS after each sweep, the growth over the first and over the last
half of the sweeps, and the database's growth per sweep.

Run: ``.venv/bin/python benchmarks/bench_server_memory.py [--sweeps 16] [--runs 32]``
"""
from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import time
from pathlib import Path

import harness
from bench_list import jupyter_server

SETTLE_SECONDS = 1.5  # after a sweep: kernels shut down, the pool refilled
POLL_SECONDS = 0.25


def _request(port: int, token: str, method: str, path: str, body: dict | None = None) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=json.dumps(body) if body else None,
                           headers={"Authorization": f"token {token}"})
        response = connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return json.loads(data)
    finally:
        connection.close()


def _server_pid(port: int) -> int:
    """The pid of the server listening on ``port`` (found by its command line)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if f"--port={port}".encode() in command and b"jupyter_server" in command:
                return int(proc.name)
    raise RuntimeError("the server process was not found")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _sweep(port: int, token: str, runs: int) -> None:
    sweep = _request(port, token, "POST", "/mlx/sweeps", {"notebook": "tiny.ipynb", "grid": {"x": list(range(runs))}})
    sweep_id = sweep["sweep"]["id"]
    while _request(port, token, "GET", f"/mlx/sweeps/{sweep_id}")["sweep"]["status"] in ("queued", "running"):
        time.sleep(POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweeps", type=int, default=16)
    parser.add_argument("--runs", type=int, default=32, help="runs per sweep")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        root, scratch = Path(folder) / "project", Path(folder) / "scratch"
        harness.write_notebook(root / "tiny.ipynb", [
            harness.code_cell("x = 0", tags=["parameters"]),
            harness.code_cell("print(x)"),
        ])
        database = root / ".mlx" / "runs.sqlite"
        rows = []
        with jupyter_server(root, scratch) as (port, token):
            pid = _server_pid(port)
            _sweep(port, token, 2)  # warm-up: imports, the store, the zygote
            time.sleep(SETTLE_SECONDS)
            start = _rss_mib(pid)
            print(f"server RSS after a 2-run warm-up: {start:.2f} MiB; {args.sweeps} sweeps of {args.runs} runs ...")
            for number in range(1, args.sweeps + 1):
                began = time.monotonic()
                _sweep(port, token, args.runs)
                time.sleep(SETTLE_SECONDS)
                rss = _rss_mib(pid)
                rows.append({"sweep": number, "rss_mib": rss, "growth_mib": rss - (rows[-1]["rss_mib"] if rows else start),
                             "database_kib": database.stat().st_size / 1024, "wall_s": time.monotonic() - began})
                print(f"  sweep {number}: {rss:.2f} MiB ({rows[-1]['growth_mib']:+.2f}), "
                      f"database {rows[-1]['database_kib']:.0f} KiB", flush=True)
    half = len(rows) // 2
    first = rows[half - 1]["rss_mib"] - rows[0]["rss_mib"] if half > 1 else None
    last = rows[-1]["rss_mib"] - rows[half]["rss_mib"] if half > 1 else None
    per_sweep_db = (rows[-1]["database_kib"] - rows[0]["database_kib"]) / max(1, len(rows) - 1)
    harness.print_table(["sweep", "RSS MiB", "growth MiB", "database KiB"],
                        [[r["sweep"], f"{r['rss_mib']:.2f}", f"{r['growth_mib']:+.2f}", f"{r['database_kib']:.0f}"] for r in rows])
    if first is not None and last is not None:
        print(f"\ngrowth per sweep: first half {first / (half - 1):+.3f} MiB, last half {last / (len(rows) - half - 1):+.3f} MiB; "
              f"database {per_sweep_db:+.0f} KiB per sweep")
        print("a leak grows as much in the last half as in the first; caches grow less and less")
    harness.write_results("bench_server_memory", {
        "sweeps": args.sweeps, "runs_per_sweep": args.runs, "start_rss_mib": start, "rows": rows,
        "growth_per_sweep_first_half_mib": first / (half - 1) if first is not None else None,
        "growth_per_sweep_last_half_mib": last / (len(rows) - half - 1) if last is not None else None,
        "database_growth_per_sweep_kib": per_sweep_db,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
