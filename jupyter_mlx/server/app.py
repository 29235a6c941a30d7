"""``MLXExtensionApp``: owns the project's ``RunService`` inside a Jupyter server."""
from __future__ import annotations

from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode

from ..config import CONFIG_FILE_NAME, MLXConfig
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
        service = RunService(root, MLXConfig(parent=self))
        self.settings["mlx_service"] = service
        self.log.info("jupyter_mlx: runs of %s in %s", root, service.config.store_url or root / ".mlx")

    def initialize_handlers(self) -> None:
        self.handlers.extend(route_handlers())

    async def stop_extension(self) -> None:
        service = self.settings.get("mlx_service")
        if service is not None:
            service.close()
