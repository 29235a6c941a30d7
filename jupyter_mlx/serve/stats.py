"""Request counts and latencies shared by an endpoint's forked workers (a shared mapping made
before the fork), so ``/healthz`` reports the whole endpoint, not one worker. A managed endpoint
maps a file in its folder instead of anonymous memory, so its manager reads the counts from
there (``read_stats``), without asking the endpoint (which tells them only to its token)."""
from __future__ import annotations

import bisect
import mmap
import os
import struct
from pathlib import Path
from typing import Any

# latency histogram bucket upper bounds, in milliseconds (the last bucket is open-ended)
BUCKETS_MS = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 500, 1000, 2500, 10000, float("inf"))
_SLOT = struct.Struct(f"<3Q{len(BUCKETS_MS)}Q")  # requests, errors (5xx), total microseconds, histogram


class SharedStats:
    """One slot per worker; a worker only writes its own slot (no locks needed)."""

    def __init__(self, workers: int, path: Path | None = None) -> None:
        self.workers = max(1, workers)
        size = _SLOT.size * self.workers
        if path is None:
            self._memory = mmap.mmap(-1, size)
        else:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.ftruncate(descriptor, size)
                self._memory = mmap.mmap(descriptor, size)
            finally:
                os.close(descriptor)
        self.slot = 0  # set in each worker after the fork

    def record(self, milliseconds: float, failed: bool) -> None:
        offset = self.slot * _SLOT.size
        values = list(_SLOT.unpack_from(self._memory, offset))
        values[0] += 1
        values[1] += int(failed)
        values[2] += int(milliseconds * 1000)
        values[3 + bisect.bisect_left(BUCKETS_MS, milliseconds)] += 1
        _SLOT.pack_into(self._memory, offset, *values)

    def summary(self) -> dict[str, Any]:
        """Totals over all workers, with latency percentiles (upper bounds of their buckets)."""
        return _summary(self._memory, self.workers)


def read_stats(path: Path) -> dict[str, Any] | None:
    """The summary of a stats file an endpoint maps (None when there is none, or not yet)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    workers = len(data) // _SLOT.size
    return _summary(data, workers) if workers else None


def _summary(memory: Any, workers: int) -> dict[str, Any]:
    requests = errors = micros = 0
    histogram = [0] * len(BUCKETS_MS)
    for slot in range(workers):
        values = _SLOT.unpack_from(memory, slot * _SLOT.size)
        requests, errors, micros = requests + values[0], errors + values[1], micros + values[2]
        histogram = [a + b for a, b in zip(histogram, values[3:])]
    return {
        "requests": requests,
        "errors": errors,
        "latency_ms": {
            "mean": round(micros / 1000 / requests, 3) if requests else None,
            "p50": _percentile(histogram, requests, 0.50),
            "p99": _percentile(histogram, requests, 0.99),
        },
    }


def _percentile(histogram: list[int], total: int, q: float) -> float | None:
    if not total:
        return None
    seen = 0
    for bound, count in zip(BUCKETS_MS, histogram):
        seen += count
        if seen >= q * total:
            return bound if bound != float("inf") else None
    return None
