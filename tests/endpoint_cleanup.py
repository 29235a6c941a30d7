"""After a test that deploys endpoints: stop those it left in its project."""
from __future__ import annotations

import json
from pathlib import Path


def stop_endpoints(root: Path) -> list[str]:
    """Stop every endpoint of the project at ``root`` that should run (a deployment or restore in
    progress holds the endpoint's lock: ``stop`` waits for it); the names of those whose
    supervisor was running (and said so: ``stopped`` in its status)."""
    from jupyter_mlx.service import RunService

    folder = root / ".mlx" / "endpoints"
    if not folder.is_dir():
        return []
    service = RunService(root)
    try:
        stopped = []
        for record, _ in service.endpoints.list():
            if record.desired != "running":
                continue
            service.endpoints.stop(record.name)
            status = json.loads((folder / record.name / "status.json").read_text() or "{}") \
                if (folder / record.name / "status.json").exists() else {}
            if status.get("state") == "stopped":
                stopped.append(record.name)
        return stopped
    finally:
        service.close()
