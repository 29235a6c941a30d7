"""Choosing a backend per run: ``local``, ``gateway`` or ``dask``, with its address and token.

Two rules keep a request from sending work, or the gateway's token, somewhere it should not go:

* the configured gateway token (``c.MLXConfig.gateway_token``, else ``$JUPYTER_MLX_GATEWAY_TOKEN``)
  is only ever sent to the configured gateway URL; another URL gets only a token given with the
  request itself, or none (whoever calls);
* a request that comes over the network (``remote=True``: through the Jupyter server) may only
  name the configured gateway URL or scheduler, or one in ``c.MLXConfig.allowed_gateways`` /
  ``allowed_schedulers``; the person running the CLI or the Python API owns the configuration and
  may name any address.
"""
from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

from ..config import MLXConfig
from ..errors import MLXError
from .executor import Executor

BACKENDS = ("local", "gateway", "dask")
_DEFAULT_PORTS = {"http": 80, "https": 443, "tcp": 8786, "tls": 8786}


@dataclass(frozen=True)
class BackendChoice:
    """A backend and where it is; the key under which its executor is kept."""

    name: str = "local"
    address: str = ""  # gateway URL or dask scheduler address
    token: str = ""


def choose_backend(
    config: MLXConfig,
    name: str | None = None,
    address: str | None = None,
    token: str | None = None,
    *,
    remote: bool = False,
) -> BackendChoice:
    """The backend a request names (else the configured default), with its address and token;
    400 if unusable, or (``remote``) if the address is not allowed."""
    name = name or config.default_backend or "local"
    if name not in BACKENDS:
        raise MLXError("invalid_request", f"unknown backend {name!r}; one of {', '.join(BACKENDS)}")
    if name == "local":
        if address:
            raise MLXError("invalid_request", "the local backend takes no address")
        return BackendChoice("local")
    if name == "gateway":
        return _gateway(config, address, token, remote)
    scheduler = address or config.dask_scheduler
    if not scheduler:
        raise MLXError("invalid_request", "the dask backend needs a scheduler address: --scheduler or c.MLXConfig.dask_scheduler")
    if remote:
        _check_allowed("Dask scheduler", scheduler, config.dask_scheduler, config.allowed_schedulers, "dask_scheduler", "allowed_schedulers")
    return BackendChoice("dask", scheduler)


def _gateway(config: MLXConfig, address: str | None, token: str | None, remote: bool) -> BackendChoice:
    url = (address or config.gateway_url).strip()
    if not url:
        raise MLXError("invalid_request", "the gateway backend needs a URL: --gateway-url or c.MLXConfig.gateway_url")
    if not url.startswith(("http://", "https://")):
        raise MLXError("invalid_request", f"gateway URL {url!r} must start with http:// or https://")
    configured = bool(config.gateway_url) and address_key(url) == address_key(config.gateway_url)
    if remote:
        _check_allowed("gateway URL", url, config.gateway_url, config.allowed_gateways, "gateway_url", "allowed_gateways")
    if token is None:  # the configured token goes to the configured gateway, and nowhere else
        token = (config.gateway_token or os.environ.get("JUPYTER_MLX_GATEWAY_TOKEN", "")) if configured else ""
    return BackendChoice("gateway", url.rstrip("/"), token)


def address_key(address: str) -> tuple[object, ...]:
    """What makes two addresses the same: scheme, credentials, host, port (the scheme's default if
    none), path without a trailing slash, query. A scheduler without a scheme is ``tcp://``."""
    text = address.strip()
    try:
        parts = urllib.parse.urlsplit(text if "://" in text else "tcp://" + text)
        port = parts.port
    except ValueError as exc:  # an invalid port or IPv6 host
        raise MLXError("invalid_request", f"{address!r} is not a valid address: {exc}") from None
    scheme = parts.scheme.lower()
    return (
        scheme, parts.username, parts.password, (parts.hostname or "").lower(),
        port or _DEFAULT_PORTS.get(scheme), parts.path.rstrip("/"), parts.query,
    )


def _check_allowed(what: str, address: str, configured: str, allowed: list[str], setting: str, allow_setting: str) -> None:
    """400 unless ``address`` is the configured one or in the allow-list (a request over the network)."""
    key = address_key(address)
    if any(candidate and address_key(candidate) == key for candidate in (configured, *allowed)):
        return
    raise MLXError(
        "invalid_request",
        f"{what} {address} is not allowed on this server: it uses c.MLXConfig.{setting}"
        f" ({configured or 'not set'}) or one listed in c.MLXConfig.{allow_setting};"
        f" add it to c.MLXConfig.{allow_setting} in the server's configuration to allow it",
    )


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
