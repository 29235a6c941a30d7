"""ipywidgets views of runs: live progress, a runs table with selection, a comparison.

Every view is shown through a display object whose bundle also carries ``text/html`` and
``text/plain``, so a notebook keeps a readable summary where widgets are not rendered
(nbconvert to HTML, papermill output, a terminal IPython). ipywidgets is imported only where
widgets are shown: in a kernel, unless ``$JUPYTER_MLX_WIDGETS=0``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

from ..diff.comparison import Comparison

if TYPE_CHECKING:
    from ..notebook_api import RunHandle
    from ..transport import ComparisonResult, Transport

log = logging.getLogger(__name__)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGETS_ENV = "JUPYTER_MLX_WIDGETS"
POLL = 0.25  # seconds between two looks at running runs


def widgets_enabled() -> bool:
    """Whether widgets can render here: inside a kernel (a frontend may show them), with ipywidgets."""
    if os.environ.get(WIDGETS_ENV, "1").lower() in ("0", "false", "no"):
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


class Bundle:
    """A display object: a ready mime bundle (a widget view and its fallbacks)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self.data

    def __repr__(self) -> str:
        return self.data.get("text/plain", "")


def with_widget(fallback: dict[str, Any], make: Callable[[], Any]) -> dict[str, Any]:
    """``fallback`` (text/plain, text/html) plus the view of the widget ``make()`` returns; a widget
    that cannot be made leaves the fallback (and a warning in the log), never a broken output."""
    try:
        widget = make()
        return {**fallback, WIDGET_VIEW: widget._repr_mimebundle_()[WIDGET_VIEW]}
    except Exception:
        log.warning("jupyter_mlx: the widget could not be shown", exc_info=True)
        return fallback


# -- runs: progress, then a summary ------------------------------------------------------------------
def summary_bundle(handles: list["RunHandle"], sweep_id: str | None = None) -> dict[str, Any]:
    from .summary import run_html, run_text, sweep_html, sweep_text

    records = [handle.record for handle in handles]
    if sweep_id is not None:
        return {"text/plain": sweep_text(sweep_id, records), "text/html": sweep_html(sweep_id, records)}
    return {"text/plain": "\n".join(run_text(h.record, h.link()) for h in handles),
            "text/html": "".join(run_html(h.record, h.link()) for h in handles)}


def run_bundle(handles: list["RunHandle"], sweep_id: str | None = None) -> dict[str, Any]:
    """How runs display: a live progress widget while any is unfinished (in a kernel), else a summary."""
    fallback = summary_bundle(handles, sweep_id)
    if all(handle.done for handle in handles) or not widgets_enabled():
        return fallback
    from .progress import RunProgress

    def make() -> RunProgress:
        widget = RunProgress(handles, sweep_id)
        widget.follow_in_background()
        return widget

    return with_widget(fallback, make)


def follow(handles: list["RunHandle"], sweep_id: str | None = None, wait: bool = True) -> None:
    """Show the runs' progress; ``wait``: until they are over, then replace it by their summary.

    Ctrl-C (the kernel's interrupt) while waiting cancels the runs, then re-raises.
    """
    from IPython.display import display

    if not wait:
        display(Bundle(run_bundle(handles, sweep_id)))
        return
    widget = None
    shown = None
    if widgets_enabled() and not all(h.done for h in handles):
        from .progress import RunProgress

        try:
            widget = RunProgress(handles, sweep_id, blocking=True)
        except Exception:  # no live progress then; the summary still comes
            log.warning("jupyter_mlx: the progress widget could not be shown", exc_info=True)
        else:
            shown = display(Bundle(with_widget(summary_bundle(handles, sweep_id), lambda: widget)), display_id=True)
    from ..notebook_api import refresh_all

    interrupted = False
    try:
        while not refresh_all(handles, sweep_id):
            if widget is not None:
                widget.update()
            time.sleep(POLL)
    except KeyboardInterrupt:
        cancel_all(handles, sweep_id)
        interrupted = True
    finally:
        if widget is not None:
            widget.close()
    final = Bundle(summary_bundle(handles, sweep_id))  # what the notebook keeps: the runs as they ended
    if shown is not None:
        shown.update(final)
    else:
        display(final)
    if interrupted:
        raise KeyboardInterrupt


def cancel_all(handles: list["RunHandle"], sweep_id: str | None = None, timeout: float = 15.0) -> None:
    """Cancel the unfinished runs and wait (a little) until they stopped."""
    open_runs = [handle for handle in handles if not handle.done]
    if not open_runs:
        return
    transport = open_runs[0].transport
    if sweep_id is not None:
        transport.cancel(sweep_id, kind="sweep")
    else:
        for handle in open_runs:
            transport.cancel(handle.id, kind="run")
    from ..notebook_api import refresh_all

    deadline = time.monotonic() + timeout
    while not refresh_all(handles, sweep_id) and time.monotonic() < deadline:
        time.sleep(POLL)


# -- the runs table ------------------------------------------------------------------------------------
class RunsView:
    """Runs as a table: a widget with selection (select two, compare) in a kernel; the DataFrame's
    HTML and text elsewhere. ``.frame`` is the DataFrame."""

    def __init__(self, frame: Any, transport: "Transport") -> None:
        self.frame = frame
        self.transport = transport

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        fallback = {"text/plain": self.frame.to_string() if len(self.frame) else "no runs",
                    "text/html": self.frame._repr_html_() if len(self.frame) else "<p>no runs</p>"}
        if not len(self.frame) or not widgets_enabled():
            return fallback
        from .table import RunsTableWidget

        return with_widget(fallback, lambda: RunsTableWidget(self.frame, self.transport))


# -- a comparison --------------------------------------------------------------------------------------
class _Shaped:
    """The comparison JSON where a renderer wants a ``Comparison`` (it reads ``to_json()`` only)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_json(self) -> dict[str, Any]:
        return self.data


class ComparisonView:
    """A comparison that displays itself: the summary and, in a widget, the full report (cells,
    images side by side) on request. ``.data`` is the JSON; ``.comparison`` the object (in-process)."""

    def __init__(self, result: "ComparisonResult") -> None:
        self.result = result
        self.data = result.data
        self.comparison = result.comparison

    def to_json(self) -> dict[str, Any]:
        return self.data

    def unexpected(self) -> list[str]:
        return list(self.data["summary"]["unexpected"])

    def text(self) -> str:
        from ..diff.terminal import format_comparison

        return format_comparison(self.data)

    def summary_html(self) -> str:
        from ..diff.report import summary_html

        return summary_html(_Shaped(self.data))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        fallback = {"text/plain": self.text(), "text/html": self.summary_html()}
        if not widgets_enabled():
            return fallback
        from .comparison import ComparisonWidget

        return with_widget(fallback, lambda: ComparisonWidget(self))


class ShownComparison(Comparison):
    """A ``Comparison`` (all of it: ``to_json()``, ``unexpected()``, the frames) that displays
    itself: in a kernel, the comparison widget (summary, full report on request); elsewhere, or
    with ``$JUPYTER_MLX_WIDGETS=0``, the summary as ``text/html`` and ``text/plain``."""

    @classmethod
    def of(cls, comparison: Comparison) -> "ShownComparison":
        return cls(**{f.name: getattr(comparison, f.name) for f in dataclasses.fields(comparison)})

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any] | None:
        """The view's bundle; ``None`` (the view could not be made) lets IPython fall back to
        ``_repr_html_``."""
        try:
            from ..diff.report import report_html
            from ..transport import ComparisonResult

            bundle = ComparisonView(ComparisonResult(self.to_json(), lambda: report_html(self), self))._repr_mimebundle_()
        except Exception:
            log.warning("jupyter_mlx: the comparison view could not be made", exc_info=True)
            return None
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle
