"""Image outputs (diff.images) and metric series (diff.series) compared."""
from __future__ import annotations

import base64
import io
import sys
import types

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from jupyter_mlx.diff import images
from jupyter_mlx.diff.images import compare_images
from jupyter_mlx.diff.options import CompareOptions
from jupyter_mlx.diff.series import (
    MAX_LISTED_RANGES,
    compare_series,
    describe_changed_steps,
    metric_verdict,
    overlay_chart,
)

OPTIONS = CompareOptions()


def _png(pixels: np.ndarray, **text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _picture(height: int = 80, width: int = 100) -> np.ndarray:
    """An opaque RGBA gradient with a dark square: something SSIM has structure to look at."""
    y, x = np.mgrid[:height, :width]
    pixels = np.empty((height, width, 4), np.uint8)
    pixels[..., 0] = x * 255 // width
    pixels[..., 1] = y * 255 // height
    pixels[..., 2] = 128
    pixels[..., 3] = 255
    pixels[20:40, 30:60, :3] = 20
    return pixels


def _mask(detail: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(detail["mask"])))


@pytest.fixture(scope="module")
def charts() -> tuple[bytes, bytes]:
    """Two realistic 600x400 matplotlib charts; the second's curve moved a little."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def chart(shift: float) -> bytes:
        figure = Figure(figsize=(6, 4), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        x = np.linspace(0, 10, 200)
        axes.plot(x, np.sin(x))
        axes.plot(x, np.cos(x) + shift)
        axes.set_ylim(-1.5, 1.5)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    return chart(0.0), chart(0.05)


def test_identical_bytes_read_only_the_header(monkeypatch):
    data = _png(_picture())
    monkeypatch.setattr(images, "_decode", lambda *args: pytest.fail("pixels decoded"))
    judged = compare_images(data, data, "image/png", OPTIONS)
    assert judged.judgement == "identical"
    assert judged.detail == {"mime": "image/png", "size_a": [100, 80], "size_b": [100, 80]}


def test_same_pixels_other_metadata_is_identical():
    pixels = _picture()
    a, b = _png(pixels, Software="run A"), _png(pixels, Software="run B, later")
    assert a != b
    judged = compare_images(a, b, "image/png", OPTIONS)
    assert judged.judgement == "identical"
    assert judged.detail["changed_pixels"] == 0
    assert judged.detail["similarity"] == 1.0
    assert judged.detail["bbox"] is None and judged.detail["mask"] is None


def test_small_change():
    before = _picture()
    after = before.copy()
    after[50:55, 10:20, 0] = 255 - after[50:55, 10:20, 0]  # 50 pixels of 8000
    judged = compare_images(_png(before), _png(after), "image/png", OPTIONS)
    detail = judged.detail
    assert judged.judgement == "changed"
    assert detail["size_changed"] is False and detail["size_a"] == detail["size_b"] == [100, 80]
    assert detail["changed_pixels"] == 50
    assert detail["changed_fraction"] == pytest.approx(50 / 8000)
    assert detail["bbox"] == [10, 50, 20, 55]
    assert 0.8 < detail["similarity"] < 1.0
    mask = _mask(detail)
    assert mask.size == (100, 80)
    red = np.all(np.asarray(mask.convert("RGB")) == (255, 0, 0), axis=2)
    assert np.array_equal(np.argwhere(red), np.argwhere(np.any(before != after, axis=2)))


def test_without_mask():
    before = _picture()
    after = before.copy()
    after[0, 0, 1] += 1
    judged = compare_images(_png(before), _png(after), "image/png", OPTIONS, mask=False)
    assert judged.judgement == "changed" and judged.detail["mask"] is None


def test_tolerances():
    before = _picture()
    after = before.copy()
    after[10:20, 10:20, 2] += 4  # 100 pixels a little bluer
    a, b = _png(before), _png(after)
    by_fraction = compare_images(a, b, "image/png", CompareOptions(image_changed_fraction=0.02))
    assert by_fraction.judgement == "within_tolerance"
    assert by_fraction.detail["changed_pixels"] == 100
    by_pixel = compare_images(a, b, "image/png", CompareOptions(image_pixel_tolerance=4))
    assert by_pixel.judgement == "identical"
    assert by_pixel.detail["changed_pixels"] == 0 and by_pixel.detail["mask"] is None
    assert compare_images(a, b, "image/png", CompareOptions(image_pixel_tolerance=3)).judgement == "changed"


def test_size_change_still_shows_where():
    before = _picture(80, 100)
    after = np.asarray(Image.fromarray(before).resize((120, 96)))
    judged = compare_images(_png(before), _png(after), "image/png", OPTIONS)
    detail = judged.detail
    assert judged.judgement == "changed"
    assert detail["size_changed"] is True
    assert detail["size_a"] == [100, 80] and detail["size_b"] == [120, 96]
    assert 0 < detail["similarity"] <= 1
    assert _mask(detail).size == (100, 80)


def test_transparency_change_is_seen():
    before = _picture()
    after = before.copy()
    after[:40, :, 3] = 0
    judged = compare_images(_png(before), _png(after), "image/png", OPTIONS)
    assert judged.judgement == "changed"
    assert judged.detail["changed_fraction"] == pytest.approx(0.5)
    assert judged.detail["similarity"] < 0.9


@pytest.mark.parametrize("side", ["A", "B"])
@pytest.mark.parametrize("corrupt", [b"not an image", b"", "truncated"])
def test_unreadable_image_names_the_side(side, corrupt):
    good = _png(_picture())
    bad = good[: len(good) // 2] if corrupt == "truncated" else corrupt
    a, b = (bad, good) if side == "A" else (good, bad)
    judged = compare_images(a, b, "image/png", OPTIONS)
    assert judged.judgement == "changed"
    assert set(judged.detail) == {"mime", "error"}
    assert judged.detail["error"].startswith(f"image in run {side} could not be read: ")
    assert "0x" not in judged.detail["error"]


def test_jpeg():
    before = _picture()[..., :3]
    after = before.copy()
    after[60:70, 60:90] = 250
    judged = compare_images(_jpeg(before), _jpeg(after), "image/jpeg", OPTIONS)
    assert judged.judgement == "changed"
    assert judged.detail["size_a"] == [100, 80]
    x0, y0, x1, y1 = judged.detail["bbox"]
    assert x0 <= 60 and y0 <= 60 and x1 >= 90 and y1 >= 70  # JPEG blocks blur the edges
    assert judged.detail["similarity"] < 1


def test_symmetric(charts):
    a, b = charts
    forward, backward = compare_images(a, b, "image/png", OPTIONS), compare_images(b, a, "image/png", OPTIONS)
    assert forward.judgement == backward.judgement == "changed"
    for key in ("changed_pixels", "changed_fraction", "similarity", "bbox"):
        assert forward.detail[key] == backward.detail[key], key
    assert 0 < forward.detail["changed_fraction"] < 0.1
    assert 0.5 < forward.detail["similarity"] < 1
    assert _mask(forward.detail).size == (600, 400)


def test_ssim_matches_a_direct_computation():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (23, 31), dtype=np.uint8)
    y = x.copy()
    y[5:12, 20:] = rng.integers(0, 256, (7, 11), dtype=np.uint8)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for i in range(23 - 7):
        for j in range(31 - 7):
            a, b = x[i:i + 8, j:j + 8].astype(float), y[i:i + 8, j:j + 8].astype(float)
            covariance = ((a - a.mean()) * (b - b.mean())).mean()
            scores.append((2 * a.mean() * b.mean() + c1) * (2 * covariance + c2)
                          / ((a.mean() ** 2 + b.mean() ** 2 + c1) * (a.var() + b.var() + c2)))
    assert images._ssim(x, y) == pytest.approx(np.mean(scores), abs=1e-6)
    assert images._ssim(x, x) == 1.0


SVG = """<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="50">
 <metadata><dc:date>{date}</dc:date></metadata>
 <defs><path id="{marker}" d="M 0 0 L 0 3.5"/><clipPath id="{clip}"><rect width="80" height="40"/></clipPath></defs>
 <g id="figure_1" clip-path="url(#{clip})"><use xlink:href="#{marker}" x="{x}" y="10"/></g>
</svg>"""


def _svg(date: str = "2024-01-01T00:00:00", marker: str = "m0123456789", clip: str = "p0123456789",
         x: str = "10") -> bytes:
    return SVG.format(date=date, marker=marker, clip=clip, x=x).encode()


def test_svg_as_text(monkeypatch):
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # not importable, whether installed or not
    a = _svg()
    assert compare_images(a, a, "image/svg+xml", OPTIONS).judgement == "identical"
    rerun = compare_images(a, _svg("2024-01-02T10:11:12", "mfedcba9876", "pfedcba9876"), "image/svg+xml", OPTIONS)
    assert rerun.judgement == "within_tolerance"
    moved = compare_images(a, _svg(x="12"), "image/svg+xml", OPTIONS)
    assert moved.judgement == "changed"
    assert moved.detail == {"mime": "image/svg+xml", "rendered": False,
                            "note": "SVG compared as text (install cairosvg to compare it rendered)"}


def test_svg_rendered_when_cairosvg_is_there(monkeypatch):
    def svg2png(bytestring: bytes) -> bytes:
        if b"broken" in bytestring:
            raise ValueError("not well-formed")
        pixels = _picture()
        pixels[:5, :5, 0] = int(b'x="12"' in bytestring) * 200
        return _png(pixels)

    monkeypatch.setitem(sys.modules, "cairosvg", types.SimpleNamespace(svg2png=svg2png))
    moved = compare_images(_svg(), _svg(x="12"), "image/svg+xml", OPTIONS)
    assert moved.judgement == "changed"
    assert moved.detail["rendered"] is True and moved.detail["changed_pixels"] == 25
    broken = compare_images(_svg(), b"<svg broken", "image/svg+xml", OPTIONS)
    assert broken.judgement == "changed"
    assert broken.detail["error"] == "image in run B could not be read: not well-formed"


LOSS = [(step, 1 / (step + 1)) for step in range(10)]


def test_series_identical():
    judged = compare_series("loss", LOSS, list(LOSS), 1e-9, 1e-12)
    assert judged.judgement == "identical"
    assert judged.detail == {
        "name": "loss", "steps_a": 10, "steps_b": 10, "steps_only_in_a": 0, "steps_only_in_b": 0,
        "max_abs_diff": 0.0, "max_rel_diff": 0.0, "first_difference_step": None, "last_a": 0.1, "last_b": 0.1,
        "aligned_by": "step", "steps_compared": 10, "changed_steps": [], "changed_steps_count": 0,
    }


def test_series_within_tolerance():
    noisy = [(step, value * (1 + 1e-12)) for step, value in LOSS]
    judged = compare_series("loss", LOSS, noisy, 1e-9, 1e-12)
    assert judged.judgement == "within_tolerance"
    assert judged.detail["max_rel_diff"] == pytest.approx(1e-12, rel=1e-3)
    assert judged.detail["first_difference_step"] == 0


def test_series_changed():
    moved = [(step, value + (1e-2 if step >= 6 else 0)) for step, value in LOSS]
    judged = compare_series("loss", LOSS, moved, 1e-9, 1e-12)
    assert judged.judgement == "changed"
    assert judged.detail["max_abs_diff"] == pytest.approx(1e-2)
    assert judged.detail["first_difference_step"] == 6
    assert judged.detail["last_b"] == pytest.approx(0.11)
    assert judged.detail["changed_steps"] == [[6, 9]] and judged.detail["changed_steps_count"] == 4
    assert describe_changed_steps(judged.detail) == "steps 6-9 (4 of 10)"


def test_a_series_that_changed_while_its_last_value_did_not_says_where():
    a = [(1, 0.5), (2, 0.6), (3, 0.7), (4, 0.8), (5, 0.851852)]
    b = [(1, 0.4), (2, 0.6), (3, 0.75), (4, 0.8), (5, 0.851852)]
    judged = compare_series("learning_curve", a, b, 1e-9, 1e-12)
    assert judged.judgement == "changed" and judged.detail["last_a"] == judged.detail["last_b"]
    assert judged.detail["changed_steps"] == [[1, 1], [3, 3]] and judged.detail["steps_compared"] == 5
    assert describe_changed_steps(judged.detail) == "steps 1, 3 (of 5)"
    row = {"judgement": "changed", "series": judged.detail}
    assert metric_verdict(row) == "changed at steps 1, 3 (of 5)"
    one = compare_series("x", a, [*b[:2], (3, 0.7), *b[3:]], 1e-9, 1e-12).detail
    assert describe_changed_steps(one) == "step 1 (of 5)"
    noisy = compare_series("x", a, [(s, v * (1 + 1e-12)) for s, v in a], 1e-9, 1e-12)
    assert metric_verdict({"judgement": noisy.judgement, "series": noisy.detail}) == \
        "within tolerance, differs at all 5 steps"
    assert metric_verdict({"judgement": "identical", "series": compare_series("x", a, a, 0, 0).detail}) == \
        "identical  [5 vs 5 steps]"


def test_the_terminal_the_report_and_the_json_say_which_steps_changed():
    import json
    from pathlib import Path

    import jsonschema

    from jupyter_mlx.diff.comparison import compare_sides
    from jupyter_mlx.diff.report import report_html
    from jupyter_mlx.diff.sides import Side
    from jupyter_mlx.diff.terminal import format_comparison
    from jupyter_mlx.metrics import Metric

    curve_a = [0.5, 0.6, 0.7, 0.8, 0.851852]
    curve_b = [0.4, 0.6, 0.75, 0.8, 0.851852]
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    sides = [Side(label, f"{label}.ipynb", "file", notebook, metrics=[Metric("learning_curve", v, step)
                                                                       for step, v in enumerate(curve, start=1)])
             for label, curve in (("A", curve_a), ("B", curve_b))]
    comparison = compare_sides(*sides)
    data = comparison.to_json()
    schema = json.loads((Path(__file__).parent.parent / "jupyter_mlx" / "diff" / "comparison.schema.json").read_text())
    jsonschema.validate(data, schema)
    series = data["metrics"][0]["series"]
    assert series["changed_steps"] == [[1, 1], [3, 3]] and series["changed_steps_count"] == 2
    text = format_comparison(data)
    assert "learning_curve  0.851852 -> 0.851852  +0 (+0.00%)  changed at steps 1, 3 (of 5)\n" in text
    assert "metric learning_curve: same final value, series changed at steps 1, 3 (of 5)" in text
    assert "changed at steps 1, 3 (of 5)" in report_html(comparison)


def test_many_changed_steps_are_ranges_abbreviated_past_a_few():
    a = [(step, 1.0) for step in range(1000)]
    b = [(step, 2.0 if step < 500 or step == 601 or 700 <= step < 900 else 1.0) for step in range(1000)]
    detail = compare_series("loss", a, b, 1e-9, 1e-12).detail
    assert detail["changed_steps"] == [[0, 499], [601, 601], [700, 899]] and detail["changed_steps_count"] == 701
    assert describe_changed_steps(detail) == "steps 0-499, 601, 700-899 (701 of 1000)"
    every_tenth = [(step * 10, 1.0) for step in range(100)]  # ranges follow the logged steps
    moved = [(step, 2.0 if step < 300 or step % 200 == 0 else 1.0) for step, _ in every_tenth]
    detail = compare_series("loss", every_tenth, moved, 1e-9, 1e-12).detail
    assert describe_changed_steps(detail) == "steps 0-290, 400, 600, 800 (33 of 100)"
    alternating = [(step, 2.0 if step % 2 else 1.0) for step in range(1000)]
    detail = compare_series("loss", a, alternating, 1e-9, 1e-12).detail
    assert len(detail["changed_steps"]) == MAX_LISTED_RANGES and detail["changed_steps_count"] == 500
    assert describe_changed_steps(detail) == "steps 1, 3, 5, 7, 9, 11, 13, 15, … (500 of 1000)"
    by_position = compare_series("x", [(None, 1.0), (None, 2.0)], [(None, 1.5), (None, 2.0)], 0, 0).detail
    assert by_position["aligned_by"] == "position" and describe_changed_steps(by_position) == "position 0 (of 2)"


def test_series_added_and_removed():
    added = compare_series("acc", [], [(None, 0.9)], 1e-9, 1e-12)
    assert added.judgement == "added"
    assert added.detail["steps_only_in_b"] == 1 and added.detail["last_a"] is None and added.detail["last_b"] == 0.9
    assert added.detail["max_abs_diff"] is None
    assert compare_series("acc", [(None, 0.9)], [], 1e-9, 1e-12).judgement == "removed"


def test_series_by_position_without_steps():
    a, b = [(None, 1.0), (None, 2.0)], [(None, 1.0), (None, 2.5), (None, 3.0)]
    judged = compare_series("x", a, b, 1e-9, 1e-12)
    assert judged.judgement == "changed"
    assert judged.detail["steps_only_in_b"] == 1 and judged.detail["first_difference_step"] == 1


def test_series_mirrored():
    longer = [*LOSS[:5], *((step, value * 1.5) for step, value in LOSS[5:]), (10, 0.05), (10, 0.04)]
    forward = compare_series("loss", LOSS[1:], longer, 1e-9, 1e-12).detail
    backward = compare_series("loss", longer, LOSS[1:], 1e-9, 1e-12).detail
    swapped = {"steps_a": "steps_b", "steps_b": "steps_a", "steps_only_in_a": "steps_only_in_b",
               "steps_only_in_b": "steps_only_in_a", "last_a": "last_b", "last_b": "last_a"}
    assert {swapped.get(key, key): value for key, value in forward.items()} == backward
    assert forward["steps_only_in_a"] == 0 and forward["steps_only_in_b"] == 3
    assert forward["first_difference_step"] == 0 and forward["last_b"] == 0.04


def test_overlay_chart_is_a_png():
    data = overlay_chart("loss $", LOSS, [(step, value * 1.1) for step, value in LOSS], "run 1", "_run 2")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (500, 300)
