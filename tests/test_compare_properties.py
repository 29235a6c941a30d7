"""Properties of the comparison over generated notebooks (hypothesis).

compare(a, a) is all identical; swapping a and b mirrors the result; the JSON always validates
against the published schema.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jupyter_mlx.diff.comparison import compare_sides
from jupyter_mlx.diff.sides import Side

SCHEMA = json.loads((Path(__file__).parent.parent / "jupyter_mlx" / "diff" / "comparison.schema.json").read_text())
MIRROR = {"added": "removed", "removed": "added"}


def _png(shade: int) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (12, 8), (shade, 40, 90)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PNGS = [_png(shade) for shade in (0, 60, 200)]
words = st.sampled_from(["loss", "acc", "epoch", "done", "x", "0x7f3a2b1c9d80", "2026-01-02 10:00:00", "1.5 s"])
numbers = st.one_of(st.integers(-5, 5), st.sampled_from([0.5, 0.5 + 1e-13, 0.75, 1e-3, float("nan")]))
line = st.lists(st.one_of(words, numbers.map(repr)), min_size=1, max_size=4).map(" ".join)
text = st.lists(line, max_size=3).map(lambda lines: "".join(f"{item}\n" for item in lines))


def _table(rows: list[list[float]]) -> str:
    body = "".join(f"<tr><th>{i}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for i, row in enumerate(rows))
    return ('<table border="1" class="dataframe"><thead><tr><th></th><th>a</th><th>b</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


outputs = st.one_of(
    text.map(lambda t: {"output_type": "stream", "name": "stdout", "text": t}),
    line.map(lambda t: {"output_type": "execute_result", "execution_count": 1, "metadata": {},
                        "data": {"text/plain": t}}),
    st.sampled_from(PNGS).map(lambda p: {"output_type": "display_data", "metadata": {},
                                         "data": {"image/png": p, "text/plain": "<Figure>"}}),
    st.lists(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=2, max_size=2), min_size=1, max_size=3)
    .map(lambda rows: {"output_type": "display_data", "metadata": {}, "data": {"text/html": _table(rows)}}),
    st.sampled_from(["ValueError", "KeyError"]).map(lambda e: {"output_type": "error", "ename": e, "evalue": "bad",
                                                               "traceback": [e]}),
)
cells = st.one_of(
    st.builds(lambda source, outs, tags: {"cell_type": "code", "execution_count": None, "source": source,
                                          "metadata": {"tags": tags} if tags else {}, "outputs": outs},
              st.sampled_from(["a = 1", "print(a)", "plot()", "table", "a = 2"]),
              st.lists(outputs, max_size=3),
              st.sampled_from([[], [], ["mlx:ignore-output"], ["mlx:ignore"]])),
    st.builds(lambda source: {"cell_type": "markdown", "source": source, "metadata": {}},
              st.sampled_from(["# Title", "Some text", "## Results"])),
)


@st.composite
def notebooks(draw):
    items = draw(st.lists(cells, max_size=6))
    use_ids = draw(st.booleans())
    if use_ids:
        ids = draw(st.lists(st.sampled_from(["c1", "c2", "c3", "c4", "c5", "c6", "c7"]),
                            min_size=len(items), max_size=len(items), unique=True))
        items = [{**cell, "id": cell_id} for cell, cell_id in zip(items, ids)]
    return {"cells": items, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def side(label: str, nb: dict) -> Side:
    return Side(label, f"{label.lower()}.ipynb", "file", nb, path=f"{label.lower()}.ipynb")


def cell_triples(data: dict, mirrored: bool = False) -> list:
    """Each cell as (index_a, index_b, judgement, its outputs' triples), seen from A's side
    (``mirrored``: from B's side, added and removed swapped)."""

    def triple(item: dict) -> tuple:
        judgement = MIRROR.get(item["judgement"], item["judgement"]) if mirrored else item["judgement"]
        first, second = (item["index_b"], item["index_a"]) if mirrored else (item["index_a"], item["index_b"])
        return first, second, judgement

    return sorted(((*triple(cell), tuple(sorted((triple(o) for o in cell["outputs"]), key=repr)))
                   for cell in data["cells"]), key=repr)


common = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(notebooks())
def test_a_notebook_compared_with_itself_is_identical(nb):
    data = compare_sides(side("A", nb), side("B", json.loads(json.dumps(nb)))).to_json()
    jsonschema.validate(data, SCHEMA)
    assert all(cell["judgement"] in ("identical", "ignored") for cell in data["cells"])
    assert all(o["judgement"] in ("identical", "ignored") for cell in data["cells"] for o in cell["outputs"])
    assert data["summary"]["unexpected"] == [] and data["summary"]["verdict"] == "as_expected"


def _one_cell(*outputs):
    return {"cells": [{"cell_type": "code", "execution_count": None, "source": "a = 1", "metadata": {},
                       "outputs": list(outputs)}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@common
@given(notebooks(), notebooks())
@example(  # found by CI: an output that changed kind was named by B's kind, so the summaries differed
    _one_cell({"output_type": "stream", "name": "stdout", "text": ""},
              {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": "loss"}}),
    _one_cell({"output_type": "stream", "name": "stdout", "text": "loss\n"},
              {"output_type": "stream", "name": "stdout", "text": ""}),
)
def test_swapping_a_and_b_mirrors_the_result(a, b):
    forward = compare_sides(side("A", a), side("B", b)).to_json()
    backward = compare_sides(side("A", b), side("B", a)).to_json()
    jsonschema.validate(forward, SCHEMA)
    jsonschema.validate(backward, SCHEMA)
    assert cell_triples(forward, mirrored=True) == cell_triples(backward)
    for key in ("identical", "within_tolerance", "changed", "ignored"):
        assert forward["summary"]["outputs"][key] == backward["summary"]["outputs"][key]
    assert forward["summary"]["outputs"]["added"] == backward["summary"]["outputs"]["removed"]
    assert len(forward["summary"]["unexpected"]) == len(backward["summary"]["unexpected"])


@pytest.mark.parametrize("shade_a, shade_b", [(0, 60), (60, 200)])
def test_image_verdicts_mirror(shade_a, shade_b):
    def nb(png):
        return {"cells": [{"cell_type": "code", "source": "plot()", "metadata": {}, "execution_count": 1,
                           "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"image/png": png}}]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}

    a, b = nb(_png(shade_a)), nb(_png(shade_b))
    forward = compare_sides(side("A", a), side("B", b)).to_json()["cells"][0]["outputs"][0]["detail"]
    backward = compare_sides(side("A", b), side("B", a)).to_json()["cells"][0]["outputs"][0]["detail"]
    assert forward["changed_fraction"] == backward["changed_fraction"] and forward["similarity"] == backward["similarity"]
