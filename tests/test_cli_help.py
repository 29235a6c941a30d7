"""``jupyter mlx`` alone lists its commands; ``jupyter mlx --version`` says which one this is."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlx import __version__
from jupyter_mlx.cli import COMMANDS, main


def test_no_command_lists_the_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("usage: jupyter mlx")
    listed = {line.split()[0] for line in out.split("COMMAND\n", 2)[-1].splitlines() if line.startswith("    ") and
              not line.startswith("     ")}
    assert listed == set(COMMANDS)
    assert re.search(r"\n    deploy +serve as a managed, named endpoint", out)  # a name, then its help
    assert not (tmp_path / ".mlx").exists()  # nothing opened, nothing created


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"jupyter mlx {__version__}\n"


def test_the_real_command_alone_and_its_version(tmp_path):
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    if jupyter is None:
        pytest.fail("the jupyter command is not installed next to this Python")
    alone = subprocess.run([jupyter, "mlx"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert alone.returncode == 0 and "commands:" in alone.stdout and "  run  " in alone.stdout, alone.stderr
    version = subprocess.run([jupyter, "mlx", "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"jupyter mlx {__version__}"
