"""The runs table widget: a row per run with a checkbox; select two to compare them."""
from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

if TYPE_CHECKING:
    from ..transport import Transport

HIDDEN = ("id", "sweep_id")


def _cell(value: Any, column: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column == "duration":
        from ..formatting import format_duration

        return format_duration(float(value))
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "strftime"):
        try:
            return value.strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:  # NaT
            return ""
    return str(value)


class RunsTableWidget(widgets.VBox):
    """Runs (a ``runs()`` DataFrame) as a grid with selection; Compare shows the two selected runs' diff."""

    def __init__(self, frame: Any, transport: "Transport") -> None:
        self.frame = frame
        self.transport = transport
        columns = [c for c in frame.columns if c not in HIDDEN]
        header = [widgets.HTML("")] + [widgets.HTML(f"<b>{html.escape(str(c))}</b>") for c in ["run", *columns]]
        self.checks: dict[str, widgets.Checkbox] = {}
        cells: list[widgets.Widget] = list(header)
        for ref, row in frame.iterrows():
            check = widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="1.6em"))
            check.observe(self._on_selection, "value")
            self.checks[str(ref)] = check
            cells.append(check)
            cells.append(widgets.HTML(f"<code>{html.escape(str(ref))}</code>"))
            cells += [widgets.HTML(html.escape(_cell(row[c], c))) for c in columns]
        self.grid = widgets.GridBox(cells, layout=widgets.Layout(
            grid_template_columns=f"2em repeat({len(columns) + 1}, auto)", grid_gap="0 12px", width="fit-content"))
        self.compare_button = widgets.Button(description="Compare", icon="columns", disabled=True)
        self.compare_button.on_click(self._on_compare)
        self.hint = widgets.Label("select two runs to compare them")
        self.output = widgets.Output()
        super().__init__([self.grid, widgets.HBox([self.compare_button, self.hint]), self.output])

    @property
    def selected(self) -> list[str]:
        return [ref for ref, check in self.checks.items() if check.value]

    def _on_selection(self, _change: Any = None) -> None:
        count = len(self.selected)
        self.compare_button.disabled = count != 2
        self.hint.value = "compare the older with the newer" if count == 2 else "select two runs to compare them"

    def _on_compare(self, _button: Any = None) -> None:
        from IPython.display import display

        from . import ComparisonView

        b, a = self.selected  # newest first: the older one is A
        self.output.clear_output()
        with self.output:
            try:
                display(ComparisonView(self.transport.compare(a, b, {})))
            except Exception as exc:
                print(f"compare: error: {exc}")
