"""Image outputs compared pixel by pixel: changed pixels, SSIM similarity and a change mask.

Raster images (PNG, JPEG) are decoded with Pillow and compared as RGBA with numpy; SVG is
rasterized with cairosvg when it is installed, else compared as text with its volatile ids
normalized.
"""
from __future__ import annotations

import base64
import io
import re
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .judged import CHANGED, IDENTICAL, WITHIN_TOLERANCE, Judged
from .options import CompareOptions

SVG_MIME = "image/svg+xml"
MAX_PIXELS = 36_000_000  # larger images are not decoded, so memory stays bounded
SSIM_WINDOW = 8
_SSIM_BAND_PIXELS = 1 << 16  # pixels per band of the SSIM computation
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_MASK_GREYS = 15  # grey levels of the faded image in the mask; index 15 is the change colour
_SVG_TEXT_NOTE = "SVG compared as text (install cairosvg to compare it rendered)"
_SVG_DATE = re.compile(r"<dc:date>[^<]*</dc:date>")
_SVG_ID = re.compile(r'\sid="([^"]*)"')
_SVG_ID_OR_REF = re.compile(r'(\sid="|href="#|url\(#)([^")]*)')


class _Unreadable(Exception):
    """An image that could not be decoded; the message names the run."""

    def __init__(self, run: str, reason: str) -> None:
        super().__init__(f"image in run {run} could not be read: {reason}")


def compare_images(a: bytes, b: bytes, mime: str, options: CompareOptions, mask: bool = True) -> Judged:
    """Judge two image outputs (decoded bytes; SVG as UTF-8 text) of runs A and B."""
    if mime == SVG_MIME:
        return _compare_svg(a, b, options, mask)
    if a == b:
        size = _header_size(a)
        return Judged(IDENTICAL, {"mime": mime, "size_a": size, "size_b": size})
    try:
        image_a, image_b = _decode(a, "A"), _decode(b, "B")
    except _Unreadable as exc:
        return Judged(CHANGED, {"mime": mime, "error": str(exc)})
    return _compare_pixels(image_a, image_b, mime, options, mask)


def _header_size(data: bytes) -> list[int] | None:
    """[width, height] from the image header (pixels are not decoded); None when unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return list(image.size)
    except Exception:  # any decoder error means "no size"
        return None


def _decode(data: bytes, run: str) -> Image.Image:
    """The image as RGBA; raises _Unreadable naming the run."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise _Unreadable(run, f"it is too large to compare ({image.width}x{image.height} px, "
                                   f"at most {MAX_PIXELS} px)")
        image.load()
        return image if image.mode == "RGBA" else image.convert("RGBA")
    except _Unreadable:
        raise
    except Exception as exc:  # Pillow raises many kinds on corrupt data
        raise _Unreadable(run, _reason(exc)) from None


def _reason(exc: Exception) -> str:
    """What went wrong, without Pillow's ``<_io.BytesIO object at 0x...>``."""
    if isinstance(exc, UnidentifiedImageError):
        return "unknown image format or corrupt header"
    return str(exc) or type(exc).__name__


def _compare_pixels(image_a: Image.Image, image_b: Image.Image, mime: str, options: CompareOptions,
                    mask: bool) -> Judged:
    """Changed pixels, similarity and mask of two RGBA images (B resized to A's size if needed)."""
    size_a, size_b = list(image_a.size), list(image_b.size)
    size_changed = size_a != size_b
    if size_changed:
        image_b = image_b.resize(image_a.size, Image.Resampling.BILINEAR)
    rgba_a, rgba_b = np.asarray(image_a), np.asarray(image_b)
    changed = _changed_pixels(rgba_a, rgba_b, options.image_pixel_tolerance)
    count = int(np.count_nonzero(changed))
    fraction = count / changed.size
    grey_a, grey_b = _grey(image_a, rgba_a), _grey(image_b, rgba_b)
    detail: dict[str, Any] = {
        "mime": mime,
        "size_a": size_a,
        "size_b": size_b,
        "size_changed": size_changed,
        "changed_pixels": count,
        "changed_fraction": fraction,
        "similarity": round(_ssim(grey_a, grey_b), 4),
        "bbox": _bbox(changed),
        "mask": _mask_png(grey_a, changed) if mask and count else None,
    }
    if size_changed or fraction > options.image_changed_fraction:
        return Judged(CHANGED, detail)
    return Judged(IDENTICAL if count == 0 else WITHIN_TOLERANCE, detail)


def _changed_pixels(a: np.ndarray, b: np.ndarray, tolerance: int) -> np.ndarray:
    """Boolean HxW: pixels of which a channel differs by more than ``tolerance``."""
    if tolerance == 0:  # compare each RGBA pixel as one 32-bit word
        return a.view(np.uint32)[..., 0] != b.view(np.uint32)[..., 0]
    diff = np.maximum(a, b)
    diff -= np.minimum(a, b)
    return (diff > tolerance).view(np.uint32)[..., 0] != 0


def _grey(image: Image.Image, rgba: np.ndarray) -> np.ndarray:
    """uint8 greyscale of an RGBA image, composited over white where it is transparent."""
    if rgba[..., 3].min() < 255:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
    return np.asarray(image.convert("L"))


def _bbox(changed: np.ndarray) -> list[int] | None:
    """[x0, y0, x1, y1] (x1, y1 exclusive) around the True pixels, or None."""
    rows = np.flatnonzero(changed.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(changed.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def _ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM of two same-size uint8 greyscale images over all 8x8 windows (uniform weights).

    Windows where the images are equal score exactly 1, so only the windows touching the
    region that differs are computed.
    """
    height, width = x.shape
    win = 1 << (min(SSIM_WINDOW, height, width).bit_length() - 1)  # a power of two
    box = _bbox(x != y)
    if box is None:
        return 1.0
    x0, y0 = max(box[0] - win + 1, 0), max(box[1] - win + 1, 0)
    x1, y1 = min(box[2] + win - 1, width), min(box[3] + win - 1, height)
    computed = (y1 - y0 - win + 1) * (x1 - x0 - win + 1)
    windows = (height - win + 1) * (width - win + 1)
    return (_ssim_sum(x[y0:y1, x0:x1], y[y0:y1, x0:x1], win) + windows - computed) / windows


def _ssim_sum(x: np.ndarray, y: np.ndarray, win: int) -> float:
    """Sum of the SSIM of every win x win window, a band of rows at a time in two reused
    float32 buffers (memory stays small, and so do fresh allocations, i.e. page faults)."""
    height, width = x.shape
    band = max(1, _SSIM_BAND_PIXELS // width)  # window rows per band
    buffers = np.empty((2, 5, band + win - 1, width), np.float32)
    total = 0.0
    for top in range(0, height - win + 1, band):
        bottom = min(top + band, height - win + 1) + win - 1
        total += _band_ssim_sum(x[top:bottom], y[top:bottom], win, buffers[:, :, : bottom - top])
    return total


def _band_ssim_sum(x: np.ndarray, y: np.ndarray, win: int, buffers: np.ndarray) -> float:
    """SSIM summed over the windows of one band of rows, computed in place in ``buffers``.

    Window sums of x, y, x*x, y*y, x*y are integers below 2**24, so exact in float32.
    """
    planes = buffers[0]
    planes[0], planes[1] = x, y
    np.square(planes[0], out=planes[2])
    np.square(planes[1], out=planes[3])
    np.multiply(planes[0], planes[1], out=planes[4])
    sums, spare = _window_sums(planes, buffers[1], win, axis=1)
    sums, spare = _window_sums(sums, spare, win, axis=2)
    sums *= np.float32(1 / (win * win))
    mx, my, xx, yy, xy = sums  # means, then (below) variances, covariance and the SSIM terms
    mxy = spare[0, : mx.shape[0], : mx.shape[1]]
    np.multiply(mx, my, out=mxy)
    xy -= mxy
    np.square(mx, out=mx)
    np.square(my, out=my)
    xx -= mx
    yy -= my
    mx += my
    mx += _C1
    xx += yy
    xx += _C2
    mxy *= 2
    mxy += _C1
    xy *= 2
    xy += _C2
    mxy *= xy
    mx *= xx
    mxy /= mx
    return float(mxy.sum(dtype=np.float64))


def _window_sums(values: np.ndarray, spare: np.ndarray, win: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of ``win`` (a power of two) consecutive values along ``axis``, by doubling the run
    length, writing alternately into ``spare`` and ``values``; returns (sums, the free buffer)."""
    step = 1
    while step < win:
        shape = list(values.shape)
        shape[axis] -= step
        out = _head(spare, shape)
        np.add(_head(values, shape), _head(values[(slice(None),) * axis + (slice(step, None),)], shape), out=out)
        values, spare = out, values
        step *= 2
    return values, spare


def _head(array: np.ndarray, shape: list[int]) -> np.ndarray:
    """The leading ``shape`` part of ``array``."""
    return array[tuple(slice(0, n) for n in shape)]


def _mask_png(grey: np.ndarray, changed: np.ndarray) -> str:
    """Base64 PNG (4-bit palette): image A faded to 25% over white, changed pixels in red."""
    index = _GREY_INDEX[grey]
    index[changed] = _MASK_GREYS
    mask = Image.fromarray(index)
    mask.putpalette(_MASK_PALETTE)
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _mask_palette() -> tuple[np.ndarray, bytes]:
    """The grey -> palette index table and the palette (faded greys, then red)."""
    index = (np.arange(256, dtype=np.uint16) * _MASK_GREYS >> 8).astype(np.uint8)
    levels = (np.arange(_MASK_GREYS) + 0.5) * 256 / _MASK_GREYS
    faded = np.round(255 - (255 - levels) * 0.25).astype(np.uint8)
    palette = np.repeat(faded, 3).tobytes() + bytes((255, 0, 0))
    return index, palette


_GREY_INDEX, _MASK_PALETTE = _mask_palette()


def _compare_svg(a: bytes, b: bytes, options: CompareOptions, mask: bool) -> Judged:
    """Rendered with cairosvg when installed, else as text with volatile ids normalized."""
    if a == b:
        return Judged(IDENTICAL, {"mime": SVG_MIME, "rendered": False})
    rasterize = _svg_rasterizer()
    if rasterize is None:
        detail = {"mime": SVG_MIME, "rendered": False, "note": _SVG_TEXT_NOTE}
        same = _normalize_svg(a) == _normalize_svg(b)
        return Judged(WITHIN_TOLERANCE if same else CHANGED, detail)
    try:
        image_a, image_b = _decode(_render(rasterize, a, "A"), "A"), _decode(_render(rasterize, b, "B"), "B")
    except _Unreadable as exc:
        return Judged(CHANGED, {"mime": SVG_MIME, "rendered": True, "error": str(exc)})
    judged = _compare_pixels(image_a, image_b, SVG_MIME, options, mask)
    judged.detail["rendered"] = True
    return judged


def _svg_rasterizer() -> Any:
    """cairosvg.svg2png, or None when cairosvg (or the cairo library) is missing."""
    try:
        import cairosvg
    except (ImportError, OSError):
        return None
    return cairosvg.svg2png


def _render(rasterize: Any, svg: bytes, run: str) -> bytes:
    """The SVG rendered as PNG."""
    try:
        return rasterize(bytestring=svg)
    except Exception as exc:  # invalid XML, bad paths, ...
        raise _Unreadable(run, _reason(exc)) from None


def _normalize_svg(data: bytes) -> str:
    """SVG text without its creation date, its ids renamed in order of appearance (matplotlib's
    marker and clip-path ids are random-ish hashes) and the references to them to match."""
    text = _SVG_DATE.sub("<dc:date/>", data.decode("utf-8", errors="replace"))
    names: dict[str, str] = {}
    for name in _SVG_ID.findall(text):
        names.setdefault(name, f"id{len(names)}")
    return _SVG_ID_OR_REF.sub(lambda m: m.group(1) + names.get(m.group(2), m.group(2)), text)
