"""Issue 13 item 1: a request cannot send runs, or the configured gateway token, to an address
it chooses. Checked against a real listener on 127.0.0.1 that records what reaches it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jupyter_mlx.config import MLXConfig
from jupyter_mlx.errors import MLXError
from jupyter_mlx.execute.backends import address_key, choose_backend

from notebooks import write_tiny
from recording_listener import RecordingListener
from rest_client import SERVER_CONFIG, error_of, get_json

pytest_plugins = ("pytest_jupyter.jupyter_server",)

SECRET = "configured-secret-token"


# -- the rules, in the library ------------------------------------------------------------------
@pytest.mark.parametrize(
    "a, b, same",
    [
        ("http://Gateway:80/", "http://gateway", True),
        ("https://gw:443/kg/", "https://GW/kg", True),
        ("http://gw:8888", "http://gw:8889", False),
        ("http://gw:8888", "https://gw:8888", False),
        ("http://gw:8888/a", "http://gw:8888/b", False),
        ("http://user@gw:8888", "http://gw:8888", False),
        ("127.0.0.1:8786", "tcp://127.0.0.1", True),
        ("tcp://127.0.0.1:8786", "tls://127.0.0.1:8786", False),
    ],
)
def test_addresses_compare_normalized(a, b, same):
    assert (address_key(a) == address_key(b)) is same


@pytest.mark.parametrize("address", ["http://[::1:8888", "http://gw:99999", "http://gw:port"])
def test_an_invalid_address_is_a_400(address):
    config = MLXConfig(gateway_url="http://gw:8888", allowed_gateways=["http://other:8888"])
    for remote in (False, True):
        with pytest.raises(MLXError) as refused:
            choose_backend(config, "gateway", address, remote=remote)
        assert refused.value.code == "invalid_request" and "is not a valid address" in refused.value.message


def test_the_configured_token_goes_only_to_the_configured_gateway(monkeypatch):
    monkeypatch.delenv("JUPYTER_MLX_GATEWAY_TOKEN", raising=False)
    config = MLXConfig(gateway_url="http://gw:8888/", gateway_token=SECRET)
    assert choose_backend(config, "gateway").token == SECRET
    assert choose_backend(config, "gateway", "http://GW:8888").token == SECRET  # the same URL, written otherwise
    assert choose_backend(config, "gateway", "http://elsewhere:8888").token == ""
    assert choose_backend(config, "gateway", "http://elsewhere:8888", "theirs").token == "theirs"
    monkeypatch.setenv("JUPYTER_MLX_GATEWAY_TOKEN", SECRET)
    assert choose_backend(MLXConfig(), "gateway", "http://elsewhere:8888").token == ""
    monkeypatch.setenv("JUPYTER_MLX_GATEWAY_URL", "http://elsewhere:8888")
    assert choose_backend(MLXConfig(), "gateway").token == SECRET  # the URL and token of the environment


def test_requests_over_the_network_name_only_allowed_addresses():
    config = MLXConfig(gateway_url="http://gw:8888", dask_scheduler="tcp://sched:8786",
                       allowed_gateways=["http://other:8888/"], allowed_schedulers=["tcp://other:8786"])
    assert choose_backend(config, "gateway", "http://other:8888", remote=True).address == "http://other:8888"
    assert choose_backend(config, "gateway", "http://gw:8888/", remote=True).token == ""  # no token configured
    assert choose_backend(config, "dask", "other:8786", remote=True).address == "other:8786"
    for backend, address, setting in (("gateway", "http://evil:8888", "allowed_gateways"),
                                      ("dask", "tcp://evil:8786", "allowed_schedulers")):
        with pytest.raises(MLXError) as refused:
            choose_backend(config, backend, address, remote=True)
        assert refused.value.code == "invalid_request" and f"c.MLXConfig.{setting}" in refused.value.message
        assert choose_backend(config, backend, address).address == address  # the CLI, the Python API


# -- through the server ----------------------------------------------------------------------------
@pytest.fixture
def jp_root_dir(tmp_path):
    write_tiny(tmp_path / "project" / "tiny.ipynb")
    return tmp_path / "project"


@pytest.fixture
def configured():
    """The configured gateway: refuses every request (401), recording it."""
    with RecordingListener(status=401) as listener:
        yield listener


@pytest.fixture
def chosen():
    """An address a request names: a gateway that refuses every request."""
    with RecordingListener(status=401) as listener:
        yield listener


@pytest.fixture
def scheduler():
    """An address a request names as its Dask scheduler: counts connections, hangs up at once."""
    with RecordingListener(hang_up=True) as listener:
        yield listener


@pytest.fixture
def jp_server_config(configured, chosen, request):
    allowed = getattr(request, "param", False)
    return {**SERVER_CONFIG, "MLXConfig": {
        "gateway_url": configured.url, "gateway_token": SECRET, "dask_scheduler": "tcp://127.0.0.1:1",
        "allowed_gateways": [chosen.url + "/"] if allowed else [],
    }}


LAUNCHES = [("runs", {}), ("sweeps", {"grid": {"x": [1, 2]}})]


async def _nothing_recorded(jp_fetch):
    assert (await get_json(jp_fetch, "runs"))["total"] == 0
    assert (await get_json(jp_fetch, "sweeps"))["sweeps"] == []


@pytest.mark.parametrize("route, extra", LAUNCHES)
async def test_a_gateway_url_not_allowed_is_400_and_never_contacted(jp_fetch, chosen, configured, route, extra):
    for token in ({}, {"gateway_token": "theirs"}):
        body = {"notebook": "tiny.ipynb", "backend": "gateway", "gateway_url": chosen.url, **token, **extra}
        code, error = await error_of(jp_fetch, route, method="POST", body=json.dumps(body))
        assert (code, error["error"]) == (400, "invalid_request"), error
        assert chosen.url in error["message"] and "c.MLXConfig.allowed_gateways" in error["message"]
    assert chosen.connections == 0 and configured.connections == 0
    await _nothing_recorded(jp_fetch)


@pytest.mark.parametrize("jp_server_config", [True], indirect=True)
@pytest.mark.parametrize("route, extra", LAUNCHES)
async def test_an_allowed_gateway_never_receives_the_configured_token(jp_fetch, chosen, route, extra):
    body = {"notebook": "tiny.ipynb", "backend": "gateway", "gateway_url": chosen.url, **extra}
    code, error = await error_of(jp_fetch, route, method="POST", body=json.dumps(body))
    assert (code, error["error"]) == (503, "backend_unavailable") and "no auth token was sent" in error["message"]
    assert chosen.requests and set(chosen.authorizations()) == {None}
    code, error = await error_of(jp_fetch, route, method="POST", body=json.dumps({**body, "gateway_token": "theirs"}))
    assert code == 503 and "the auth token was refused" in error["message"]
    assert set(chosen.authorizations()) == {None, "token theirs"}
    await _nothing_recorded(jp_fetch)


async def test_the_configured_gateway_gets_the_configured_token(jp_fetch, configured):
    """The control: the listener does see a token when one is due (so the tests above can fail)."""
    body = {"notebook": "tiny.ipynb", "backend": "gateway", "gateway_url": configured.url + "/"}
    code, _ = await error_of(jp_fetch, "runs", method="POST", body=json.dumps(body))
    assert code == 503 and set(configured.authorizations()) == {f"token {SECRET}"}


@pytest.mark.parametrize("route, extra", LAUNCHES)
async def test_a_scheduler_not_allowed_is_400_without_contacting_it(jp_fetch, scheduler, route, extra):
    body = {"notebook": "tiny.ipynb", "backend": "dask", "scheduler": scheduler.address, **extra}
    code, error = await error_of(jp_fetch, route, method="POST", body=json.dumps(body))
    assert (code, error["error"]) == (400, "invalid_request") and "c.MLXConfig.allowed_schedulers" in error["message"]
    assert scheduler.connections == 0
    await _nothing_recorded(jp_fetch)


# -- the CLI: any URL its user names, but the configured token only to the configured URL ----------
def _cli(root, *argv, **env):
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlx.cli", *argv], cwd=root, capture_output=True, text=True, timeout=120,
        env={**os.environ, **env},
    )


def test_the_cli_sends_the_configured_token_only_to_the_configured_gateway(tmp_path):
    write_tiny(tmp_path / "tiny.ipynb")
    with RecordingListener(status=401) as configured, RecordingListener(status=401) as chosen:
        env = {"JUPYTER_MLX_GATEWAY_URL": configured.url, "JUPYTER_MLX_GATEWAY_TOKEN": SECRET}
        done = _cli(tmp_path, "run", "tiny.ipynb", "--backend", "gateway", "--gateway-url", chosen.url, **env)
        assert done.returncode == 2 and "no auth token was sent" in done.stderr, done.stderr
        assert chosen.requests and set(chosen.authorizations()) == {None}
        done = _cli(tmp_path, "run", "tiny.ipynb", "--backend", "gateway", "--gateway-url", configured.url + "/", **env)
        assert done.returncode == 2 and set(configured.authorizations()) == {f"token {SECRET}"}, done.stderr
