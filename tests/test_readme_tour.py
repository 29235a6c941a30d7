"""The README's tour, run as a newcomer runs it: every ``$`` command of its shell blocks, in order,
in a fresh clone of the example project; each exits as the README says and prints what it shows,
in shape (see ``readme_tour``)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from readme_tour import shape_matches, tour_steps

REPOSITORY = Path(__file__).resolve().parents[1]
COMMAND_TIMEOUT = 300
_ASSIGNMENT = re.compile(r"(\w+)=(\S+)\s*(#.*)?")


def test_tour_steps_are_read_with_their_outputs_and_exit_statuses() -> None:
    readme = "\n".join([
        "```", "$ jupyter mlx run a.ipynb \\", "    -p C 1", "a.ipynb v1 succeeded in 2.5s", "```",
        "```python", "$ not a command", "```",
        "```", "$ jupyter mlx check a.ipynb@v1   # exit 1: listed", "  cell 3: changed", "```",
        "```", "In [1]: not a command's output", "```",
    ])
    steps = tour_steps(readme)
    assert [(s.command, s.expected, s.exit_status) for s in steps] == [
        ("jupyter mlx run a.ipynb  -p C 1", ["a.ipynb v1 succeeded in 2.5s"], 0),
        ("jupyter mlx check a.ipynb@v1   # exit 1: listed", ["  cell 3: changed"], 1),
    ]


def test_shape_matching_allows_volatile_values_only() -> None:
    readme = ["v2  succeeded  2026-11-25 21:45:56  2.4s  C=5  accuracy=0.8704", "  ...", "(1-2 of 2 runs)"]
    same_shape = ["v2  succeeded  2026-12-06 10:00:01  13s   C=5  accuracy=0.85", "x", "y", "(1-2 of 2 runs)"]
    assert shape_matches(readme, same_shape) == {"2026-11-25": "2026-12-06", "21:45:56": "10:00:01",
                                                 "2.4s": "13s", "0.8704": "0.85"}
    assert shape_matches(readme, ["v3  succeeded  2026-12-06 10:00:01  13s  C=5  accuracy=0.85", "(1-2 of 2 runs)"]) is None
    assert shape_matches(readme, ["v2  succeeded  2026-12-06 10:00:01  13s  C=5  accuracy=0.85", "(1-3 of 3 runs)"]) is None
    assert shape_matches(["serving at http://127.0.0.1:36993/predict"], ["serving at http://127.0.0.1:41000/predict"]) == {
        "36993": "41000"}
    assert shape_matches(["env  python 3.11.7, 131 packages"], ["env  python 3.12.1, 80 packages, Linux"]) == {}
    finished = ["nb v1 succeeded in 3.0s  C=1", "nb v2 succeeded in 2.0s  C=2", "2 runs"]
    assert shape_matches(finished, ["nb v2 succeeded in 1s  C=2", "nb v1 succeeded in 1s  C=1", "2 runs"]) is not None
    assert shape_matches(finished, ["nb v2 succeeded in 1s  C=2", "nb v2 succeeded in 1s  C=2", "2 runs"]) is None


def _clone_of_the_examples(folder: Path) -> Path:
    """What a newcomer has after cloning: the example project in a git repository."""
    shutil.copytree(REPOSITORY / "examples", folder / "examples",
                    ignore=shutil.ignore_patterns(".mlx", ".ipynb_checkpoints"))
    git = ["git", "-c", "user.name=tour", "-c", "user.email=tour@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "."], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=folder, check=True)
    return folder


def _run(command: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command as a user's terminal shows it: standard output and error together."""
    return subprocess.run(["bash", "-c", command], cwd=folder, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT)


def _stop_endpoints(folder: Path, env: dict[str, str]) -> None:
    for record in (folder / ".mlx" / "endpoints").glob("*/record.json"):
        subprocess.run(["jupyter", "mlx", "stop", record.parent.name], cwd=folder, env=env,
                       capture_output=True, timeout=60)


def test_the_readme_tour_runs_in_order_as_written(tmp_path: Path) -> None:
    steps = tour_steps((REPOSITORY / "README.md").read_text())
    assert len(steps) > 20, "the README's tour was not found"
    folder = _clone_of_the_examples(tmp_path / "wine")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),  # no Jupyter server to find
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "COLUMNS": "200",
        "LOGNAME": "alice",  # who the README's runs are recorded as (the OS user: getpass reads $LOGNAME first)
    }
    seen: dict[str, str] = {}  # README values -> this run's (ports, tokens, ids)
    try:
        for step in steps:
            command = step.command
            for readme_value, value in seen.items():
                command = command.replace(readme_value, value)
            assignment = _ASSIGNMENT.fullmatch(command)
            if assignment:  # `$ TOKEN=...`: the shell's variable for the commands after it
                env[assignment.group(1)] = assignment.group(2)
                continue
            done = _run(command, folder, env)
            where = f"README.md:{step.line}: $ {step.command}"
            assert done.returncode == step.exit_status, (
                f"{where}\nexited {done.returncode}, the README says {step.exit_status}\n{done.stdout}")
            values = shape_matches(step.expected, done.stdout.splitlines())
            assert values is not None, (
                f"{where}\nprinted:\n{done.stdout}\nthe README shows:\n" + "\n".join(step.expected))
            for readme_value, value in values.items():
                seen.setdefault(readme_value, value)
    finally:
        _stop_endpoints(folder, env)
