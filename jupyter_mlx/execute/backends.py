"""Choosing a backend per run: ``local``, ``gateway`` or ``dask``, with its address."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import MLXConfig
from ..errors import MLXError
from .executor import Executor

BACKENDS = ("local", "gateway", "dask")


@dataclass(frozen=True)
class BackendChoice:
    """A backend and where it is; the key under which its executor is kept."""

    name: str = "local"
    address: str = ""  # gateway URL or dask scheduler address
    token: str = ""


def choose_backend(config: MLXConfig, name: str | None = None, address: str | None = None, token: str | None = None) -> BackendChoice:
    """The backend a request names (else the configured default), with its address; 400 if unusable."""
    name = name or config.default_backend or "local"
    if name not in BACKENDS:
        raise MLXError("invalid_request", f"unknown backend {name!r}; one of {', '.join(BACKENDS)}")
    if name == "local":
        if address:
            raise MLXError("invalid_request", "the local backend takes no address")
        return BackendChoice("local")
    if name == "gateway":
        url = address or config.gateway_url
        if not url:
            raise MLXError("invalid_request", "the gateway backend needs a URL: --gateway-url or c.MLXConfig.gateway_url")
        if not url.startswith(("http://", "https://")):
            raise MLXError("invalid_request", f"gateway URL {url!r} must start with http:// or https://")
        secret = token if token is not None else (config.gateway_token or os.environ.get("JUPYTER_MLX_GATEWAY_TOKEN", ""))
        return BackendChoice("gateway", url.rstrip("/"), secret)
    scheduler = address or config.dask_scheduler
    if not scheduler:
        raise MLXError("invalid_request", "the dask backend needs a scheduler address: --scheduler or c.MLXConfig.dask_scheduler")
    return BackendChoice("dask", scheduler)


def create_executor(choice: BackendChoice, config: MLXConfig, keep_warm: bool = False) -> Executor:
    """A new executor for ``choice`` (the service keeps one per choice).

    ``keep_warm``: keep pre-started kernels between runs (a long-lived server), not only
    for the runs announced.
    """
    if choice.name == "local":
        from .local import LocalExecutor

        return LocalExecutor(
            concurrency=config.concurrency,
            startup_timeout=config.startup_timeout,
            idle_timeout=config.kernel_idle_timeout,
            prestart=config.prestart_kernels,
            keep_warm=keep_warm,
            fork=config.fork_kernels,
            preload=tuple(config.preload_modules),
        )
    if choice.name == "gateway":
        from .gateway import GatewayExecutor

        return GatewayExecutor(
            choice.address,
            auth_token=choice.token,
            concurrency=config.gateway_concurrency,
            startup_timeout=config.startup_timeout,
            idle_timeout=config.kernel_idle_timeout,
            prestart=config.prestart_kernels,
            keep_warm=keep_warm,
        )
    from .dask import DaskExecutor

    return DaskExecutor(choice.address, concurrency=config.dask_concurrency, prestart_kernels=config.prestart_kernels)
