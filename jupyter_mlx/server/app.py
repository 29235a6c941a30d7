"""``MLXExtensionApp``: owns the project's ``RunService`` inside a Jupyter server."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode

from ..config import CONFIG_FILE_NAME, MLXConfig
from ..errors import MLXError
from .handlers import route_handlers


class MLXExtensionApp(ExtensionApp):
    """jupyter_mlx's server extension."""

    name = "jupyter_mlx"
    extension_url = "/lab"
    load_other_extensions = True
    config_file_name = CONFIG_FILE_NAME
    classes = [MLXConfig]

    root_dir = Unicode(
        "",
        config=True,
        help="Project root of the runs (default: the server's root_dir).",
    )

    def initialize_settings(self) -> None:
        from ..service import RunService

        root = Path(self.root_dir or self.serverapp.root_dir).expanduser()
        service = RunService.for_server(root, MLXConfig(parent=self))
        self.settings["mlx_service"] = service
        self.log.info("jupyter_mlx: runs of %s in %s", root, service.store_status_url())
        try:  # recovery: runs a dead server left queued or running are over, never stuck
            interrupted = service.interrupt_orphans()
        except MLXError as exc:  # a broken store must not stop the server; requests (and /mlx/info) say why
            self.log.warning("jupyter_mlx: %s", exc.message)
        except Exception as exc:
            self.log.warning("jupyter_mlx: could not check for interrupted runs: %s", exc)
        else:
            if interrupted:
                self.log.info("jupyter_mlx: %d run(s) left by a stopped process marked interrupted", len(interrupted))
        # from now on, runs of a process that dies (a killed jupyter mlx sweep) are noticed within seconds
        service.watch_orphans()
        service.watch_store()  # another user's server on the same index: its runs reach the panel live
        threading.Thread(target=self._restore_endpoints, args=(service,), name="mlx-endpoints-restore", daemon=True).start()

    def _restore_endpoints(self, service: Any) -> None:
        """Endpoints that should run but do not (the machine restarted) start again, in the background."""
        try:
            restarted = service.endpoints.restore()
        except Exception as exc:
            self.log.warning("jupyter_mlx: could not restore endpoints: %s", exc)
            return
        if restarted:
            self.log.info("jupyter_mlx: restarted endpoint(s) %s", ", ".join(restarted))
        for name in restarted:
            warning = service.endpoints.get(name)[0].exposure_warning()
            if warning:
                self.log.warning("jupyter_mlx: %s", warning)

    def initialize_handlers(self) -> None:
        self.handlers.extend(route_handlers())

    async def stop_extension(self) -> None:
        import asyncio

        service = self.settings.get("mlx_service")
        if service is not None:
            await asyncio.to_thread(service.close)
