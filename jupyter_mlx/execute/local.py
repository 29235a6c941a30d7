"""The local backend: runs on this machine's kernels, at most ``concurrency`` at once."""
from __future__ import annotations

import os

from .executor import CancelToken, Executor
from .kernels import KernelPool
from .runner import ProgressCallback, RunResult, RunTask, execute_run


def default_concurrency() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def installed_kernels() -> list[str]:
    """The kernelspecs installed for this process (jupyter_client's ``KernelSpecManager``)."""
    from jupyter_client.kernelspec import KernelSpecManager

    return sorted(KernelSpecManager().find_kernel_specs())


class LocalExecutor(Executor):
    """One fresh kernel per run, taken from a pool of pre-started kernels."""

    name = "local"

    def __init__(
        self,
        concurrency: int = 0,
        startup_timeout: float = 60.0,
        idle_timeout: float = 600.0,
        kernel_name: str = "python3",
        prestart: bool = True,
        keep_warm: bool = False,
        fork: bool = True,
        preload: tuple[str, ...] = (),
    ) -> None:
        self._concurrency = concurrency if concurrency > 0 else default_concurrency()
        self.kernel_name = kernel_name
        self.pool = KernelPool(
            self._concurrency if prestart else 0,
            startup_timeout,
            idle_timeout,
            keep_warm and prestart,
            fork=fork,
            preload=preload,
        )

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def kernel_names(self) -> list[str]:
        return installed_kernels()

    def prepare(self, expected_runs: int, kernel_name: str = "", preload: tuple[str, ...] = ()) -> None:
        self.pool.prepare(kernel_name or self.kernel_name, expected_runs, preload)

    def follow(self, kernel_name: str, used: tuple[str, ...], following: tuple[str, ...]) -> None:
        """A notebook's runs, having used the module set ``used``, will start with ``following``."""
        self.pool.follow(kernel_name or self.kernel_name, used, following)

    def execute(self, task: RunTask, on_cell: ProgressCallback | None, cancel: CancelToken) -> RunResult:
        return execute_run(task, on_cell, kernels=self.pool, cancel=cancel)

    def close(self) -> None:
        self.pool.close()
