"""Where a run came from: the git state of the project and the kernel's environment."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import distributions
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from .store.records import Environment

_PACKAGES_SCRIPT = (
    "import json, platform, sys\n"
    "from importlib.metadata import distributions\n"
    "pkgs = {d.metadata['Name']: d.version for d in distributions() if d.metadata['Name']}\n"
    "print(json.dumps({'python': sys.version.split()[0], 'platform': platform.platform(), 'packages': pkgs}))\n"
)


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether tracked files have uncommitted changes); (None, None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip())


def _kernel_python(kernel_name: str) -> str | None:
    """The interpreter a Python kernelspec launches (``sys.executable`` for 'python')."""
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        return None
    if spec.language.lower() != "python" or not spec.argv:
        return None
    head = spec.argv[0]
    return sys.executable if head in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}") else head


def known_environment(kernel_name: str) -> Environment | None:
    """The environment of ``kernel_name`` if it was read already (no work, no thread needed)."""
    return _known.get(kernel_name)


_known: dict[str, Environment] = {}


def kernel_environment(kernel_name: str) -> Environment:
    """Python version, platform and installed packages of the kernel's interpreter (cached)."""
    environment = _known.get(kernel_name)
    if environment is None:
        environment = _known[kernel_name] = _read_kernel_environment(kernel_name)
    return environment


@lru_cache(maxsize=8)
def _read_kernel_environment(kernel_name: str) -> Environment:
    """Python version, platform and installed packages of the kernel's interpreter."""
    python = _kernel_python(kernel_name)
    if python is None:
        return Environment("", platform.platform(), kernel_name, {})
    if Path(python).resolve() == Path(sys.executable).resolve():
        packages = {d.metadata["Name"]: d.version for d in distributions() if d.metadata["Name"]}
        info = {"python": sys.version.split()[0], "platform": platform.platform(), "packages": packages}
    else:
        out = subprocess.run([python, "-c", _PACKAGES_SCRIPT], capture_output=True, text=True, timeout=60)
        info = json.loads(out.stdout) if out.returncode == 0 else {"python": "", "platform": "", "packages": {}}
    packages = {name.lower(): version for name, version in sorted(info["packages"].items())}
    return Environment(info["python"], info["platform"], kernel_name, packages)
