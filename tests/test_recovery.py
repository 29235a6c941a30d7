"""A Jupyter server killed mid-sweep: after a restart no run is stuck, and re-queue finishes them."""
from __future__ import annotations

from notebooks import write_gated
from server_process import Server, wait_for


def test_server_killed_mid_sweep_leaves_no_run_running_and_requeue_finishes_the_sweep(tmp_path):
    root = tmp_path / "project"
    gate = write_gated(root / "slow.ipynb").parent / "gate"
    first = Server(root, tmp_path)
    try:
        created = first.call("POST", "/mlx/sweeps", {"notebook": "slow.ipynb", "grid": {"seconds": [60, 61, 62]}})
        sweep_id = created["sweep"]["id"]
        wait_for(lambda: first.call("GET", f"/mlx/sweeps/{sweep_id}")["sweep"]["counts"].get("running") == 2, 60, "two running runs")
    finally:
        first.kill()
        gate.unlink()  # kernels orphaned by the kill finish at once (ipykernel also exits with its parent)

    second = Server(root, tmp_path)
    try:
        body = second.call("GET", f"/mlx/sweeps/{sweep_id}")
        assert body["sweep"]["counts"] == {"interrupted": 3} and body["sweep"]["status"] == "interrupted"
        assert {run["error"]["ename"] for run in body["runs"]} == {"Interrupted"}
        assert second.call("GET", "/mlx/runs?status=running")["total"] == 0

        again = second.call("POST", f"/mlx/sweeps/{sweep_id}/requeue", {})
        assert [run["version"] for run in again["runs"]] == [4, 5, 6]
        wait_for(
            lambda: second.call("GET", f"/mlx/sweeps/{sweep_id}")["sweep"]["counts"].get("succeeded") == 3, 90, "the re-queued runs"
        )
        body = second.call("GET", f"/mlx/sweeps/{sweep_id}")
        assert body["sweep"]["counts"] == {"interrupted": 3, "succeeded": 3}
        assert [run["parent_id"] for run in body["runs"][3:]] == [run["id"] for run in body["runs"][:3]]
    finally:
        second.stop()
