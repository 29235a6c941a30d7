"""The server caps glibc's malloc arenas (its RSS stays flat over sweeps; see bench_server_memory)."""
import sys

import pytest

from jupyter_mlx.execute.memory import limit_malloc_arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_arenas_are_capped_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(8) is True  # 8 per core is glibc's own default: harmless here
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(8) is False  # the user's setting wins
