"""The progress widget of runs: cell i of n, elapsed time, a cancel button; their summary at the end."""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import ipywidgets as widgets

from .summary import counts_text, progress_text

if TYPE_CHECKING:
    from ..notebook_api import RunHandle

BACKGROUND_POLL = 0.5


class RunProgress(widgets.VBox):
    """One run (a bar of its cells) or a sweep (a bar of its finished runs, a line per running run).

    ``blocking``: the cell waits for the runs, so the kernel cannot hear a click: the kernel's
    interrupt (the stop button) cancels them instead, and the button says so.
    """

    def __init__(self, handles: list["RunHandle"], sweep_id: str | None = None, blocking: bool = False) -> None:
        self.handles = handles
        self.sweep_id = sweep_id
        self.title = widgets.HTML()
        self.bar = widgets.IntProgress(min=0, max=1, value=0, layout=widgets.Layout(width="240px"))
        self.label = widgets.Label()
        self.cancel_button = widgets.Button(
            description="Interrupt the kernel to cancel" if blocking else "Cancel", icon="stop", button_style="warning", layout=widgets.Layout(width="auto"),
            tooltip="interrupt the kernel (stop button) to cancel" if blocking else "cancel the run(s)",
            disabled=blocking,
        )
        self.cancel_button.on_click(self._on_cancel)
        self.details = widgets.HTML()
        self._follower: threading.Thread | None = None
        super().__init__([widgets.HBox([self.title, self.bar, self.label, self.cancel_button]), self.details])
        self.update()

    def update(self) -> None:
        handles = self.handles
        if self.sweep_id is None and len(handles) == 1:
            run = handles[0]
            self.title.value = f"<b>{run.ref}</b>&nbsp;"
            progress = run.progress
            if progress:
                self.bar.max, self.bar.value = progress["cells"], progress["cell"]
            elif run.done:
                self.bar.value = self.bar.max
            self.label.value = progress_text(run.record, run.elapsed())
        else:
            finished = sum(1 for h in handles if h.done)
            self.title.value = f"<b>sweep {self.sweep_id or ''}</b>&nbsp;" if self.sweep_id else "<b>runs</b>&nbsp;"
            self.bar.max, self.bar.value = max(1, len(handles)), finished
            elapsed = max((h.elapsed() or 0.0) for h in handles) if handles else 0.0
            self.label.value = f"{finished}/{len(handles)} done · {counts_text([h.record for h in handles])} · {elapsed:.1f}s"
            running = [h for h in handles if h.record["status"] == "running"]
            self.details.value = "<br>".join(
                f"<code>v{h.version}</code> {progress_text(h.record, h.elapsed())}" for h in running[:8])
        if all(h.done for h in handles):
            self.bar.bar_style = "success" if all(h.record["status"] == "succeeded" for h in handles) else "danger"
            self.cancel_button.disabled = True

    def _on_cancel(self, _button: object = None) -> None:
        from . import cancel_all

        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling"
        threading.Thread(target=cancel_all, args=(self.handles, self.sweep_id), daemon=True).start()

    def follow_in_background(self) -> None:
        """Keep the widget current from a thread (the cell returned; clicks work), then show the summary."""
        if self._follower is None:
            self._follower = threading.Thread(target=self._follow_loop, name="mlx-progress", daemon=True)
            self._follower.start()

    def _follow_loop(self) -> None:
        from ..notebook_api import refresh_all
        from . import summary_bundle

        try:
            while not refresh_all(self.handles, self.sweep_id):
                self.update()
                time.sleep(BACKGROUND_POLL)
        except Exception as exc:  # the service went away: say so, do not spin
            self.details.value = f"<i>progress unavailable: {exc}</i>"
            return
        self.update()
        self.children = [widgets.HTML(summary_bundle(self.handles, self.sweep_id)["text/html"])]
