"""The comparison widget: the summary at once, the full report (cells, images side by side) on request."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

if TYPE_CHECKING:
    from . import ComparisonView


class ComparisonWidget(widgets.VBox):
    def __init__(self, view: "ComparisonView") -> None:
        self.view = view
        self.summary = widgets.HTML(view.summary_html())
        self.report_button = widgets.Button(description="Show cells and outputs", icon="eye",
                                            tooltip="the full report: every cell, images side by side",
                                            layout=widgets.Layout(width="max-content"))
        self.report_button.on_click(self._on_show_report)
        self.report = widgets.HTML()
        super().__init__([self.summary, self.report_button, self.report])

    def _on_show_report(self, _button: Any = None) -> None:
        self.report_button.disabled = True
        try:
            document = self.view.result.report()
        except Exception as exc:
            self.report.value = f"<i>the report could not be made: {html.escape(str(exc))}</i>"
            return
        self.report.value = (f'<iframe srcdoc="{html.escape(document, quote=True)}" '
                             'style="width:100%;height:720px;border:1px solid #ccc" sandbox="allow-scripts"></iframe>')
        self.report_button.layout.display = "none"
        self.summary.layout.display = "none"  # the report starts with the same summary
