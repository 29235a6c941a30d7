"""Who can reach an endpoint: its listening address beyond this machine's loopback, said loudly.

Part of the endpoint runtime copied into exported services: no jupyter_mlx imports.
"""
from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: this machine only. Anything else (``0.0.0.0``, an
    interface's address, a host name) may be reached from other machines."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(name: str, host: str, port: int, authenticated: bool) -> str | None:
    """The warning an endpoint listening beyond loopback logs; None on a loopback address."""
    if is_loopback(host):
        return None
    where = f"endpoint {name} listens on {host or '*'}:{port}, beyond loopback: other machines may reach it"
    if authenticated:
        return f"{where}; callers need its token"
    return f"{where}, and it has NO token: anyone who can connect may call it"
