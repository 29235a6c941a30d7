"""How many BLAS/OpenMP threads each of a sweep's runs gets, so that runs executing at once share
the cores instead of oversubscribing them.

numpy, scipy and scikit-learn start one BLAS/OpenMP thread per core. Two runs at once on two cores
then run four busy threads: on small arrays (most notebooks) the threads cost more than they save,
and spinning ones take CPU from the other run. As joblib does for its workers and Dask's nanny for
its processes, each run of a local sweep gets ``cores // runs at once`` threads (at least one),
through the usual environment variables (read by a library when it loads) and ``threadpoolctl``
(for libraries a warm kernel has loaded already). A single run keeps the libraries' defaults, and
a user's own thread settings are never overridden.
"""
from __future__ import annotations

import os
from typing import Mapping

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


def threads_per_run(configured: int, runs: int, concurrency: int, cores: int,
                    environment: Mapping[str, str] | None = None) -> int:
    """The thread limit for each of ``runs`` runs submitted together (0: no limit).

    ``configured``: ``MLXConfig.threads_per_run`` (0 automatic, a negative number never). Automatic
    limits only runs that execute alongside others, and not when the environment sets a thread count.
    """
    if configured < 0:
        return 0
    if configured > 0:
        return configured
    environment = os.environ if environment is None else environment
    at_once = min(runs, concurrency)
    if at_once <= 1 or any(name in environment for name in THREAD_VARIABLES):
        return 0
    return max(1, cores // at_once)


def limit_code(threads: int) -> str:
    """Python run silently in the kernel before the notebook's first cell: the thread variables set
    (for libraries loaded later) and, when a BLAS or OpenMP library is loaded already (a warm
    kernel), its pools limited as the variables would have at its load."""
    if threads <= 0:
        return ""
    return (
        "def _mlx_limit_threads(n):\n"
        "    import os, sys\n"
        f"    for name in {THREAD_VARIABLES!r}:\n"
        "        os.environ[name] = str(n)\n"
        "    if any(m in sys.modules for m in ('numpy', 'scipy', 'sklearn', 'torch')):\n"
        "        try:\n"
        "            from threadpoolctl import threadpool_limits\n"
        "        except ImportError:\n"
        "            return\n"
        "        threadpool_limits(limits=n)\n"
        f"_mlx_limit_threads({int(threads)})\n"
        "del _mlx_limit_threads\n"
    )
