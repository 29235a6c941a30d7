"""A free TCP port: the one helper the endpoints, the tests and the benchmarks use."""
from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at ``host`` now, as the system picks it (bind it soon: another
    process may take it meanwhile). ``host`` may be IPv4 or IPv6."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
