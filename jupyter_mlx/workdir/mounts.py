"""overlayfs and bind mounts through libc (no ``mount`` binary, no shell), and whether this
process may make them at all."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

MNT_DETACH = 2


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _escape(path: Path) -> str:
    """A path as an overlay option value: ``,`` ``:`` and ``\\`` would be read as separators."""
    text = str(path)
    for character in ("\\", ",", ":"):
        text = text.replace(character, "\\" + character)
    return text


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    """Mount ``lower`` (read-only) with ``upper`` (the writes) at ``target``."""
    options = f"lowerdir={_escape(lower)},upperdir={_escape(upper)},workdir={_escape(work)}"
    _check(_libc().mount(b"overlay", os.fsencode(target), b"overlay", 0, options.encode()), f"mount overlay at {target}")


def unmount(target: Path) -> None:
    """Detach a mount (lazily: a process still inside it keeps it until it leaves); no error if
    nothing is mounted there."""
    if _libc().umount2(os.fsencode(target), MNT_DETACH) != 0 and ctypes.get_errno() not in (22, 2):  # EINVAL, ENOENT
        code = ctypes.get_errno()
        raise OSError(code, f"unmount {target}: {os.strerror(code)}")


@lru_cache(maxsize=8)
def can_mount(base: Path) -> bool:
    """Whether this process may mount an overlay with its layers under ``base`` (tried once)."""
    if not hasattr(os, "getuid") or not Path("/proc/filesystems").exists():
        return False
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = Path(tempfile.mkdtemp(prefix=".probe-", dir=base))
    except OSError:
        return False
    try:
        for name in ("lower", "upper", "work", "view"):
            (probe / name).mkdir()
        mount_overlay(probe / "lower", probe / "upper", probe / "work", probe / "view")
    except OSError:
        return False
    else:
        unmount(probe / "view")
        return True
    finally:
        if not os.path.ismount(probe / "view"):
            shutil.rmtree(probe, ignore_errors=True)
