"""Notebook HTML made safe to embed in a report: nh3 (ammonia) with a strict allow-list.

The report is opened from disk as often as from the server, so its content must not fetch or
run anything by itself, whatever a notebook printed. Kept: table and text markup, ``style``
attributes reduced to properties that take no URL or image, written with plain values only
(words, numbers, colours, ``rgb()``/``hsl()``/``calc()``: no quotes, escapes, comments or other
functions, so ``url()``, ``image-set()`` and their CSS escapes have nowhere to go), and ``<img>``
only with a ``data:image/...`` source.
Dropped: scripts, event handlers, links, forms, frames, embedded SVG and MathML, ``id`` and
``class`` (an output must not pose as the report's own verdict or anchors), and every
``<style>`` element with its content: its selectors would restyle the whole report and its
``url()``/``@import`` would fetch, so pandas Styler colours are lost here (the report styles
tables itself); pandas' own ``style="text-align: right"`` on header rows is kept.
"""
from __future__ import annotations

import re

import nh3

TAGS = frozenset({
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "colgroup", "col",
    "div", "span", "p", "br", "hr", "b", "i", "u", "s", "em", "strong", "small", "code", "pre", "sub", "sup",
    "ul", "ol", "li", "abbr", "img",
})
ATTRIBUTES = {
    "*": {"title", "style", "align", "valign"},
    "table": {"border"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start"},
    "img": {"src", "alt", "width", "height"},
}
# None of these takes a <url> or an <image>: a value that tries (``border: image-set(...)``) is
# invalid CSS, dropped by the browser before anything is fetched.
STYLE_PROPERTIES = frozenset({
    "color", "background-color", "opacity",
    "text-align", "vertical-align", "white-space", "text-decoration", "text-transform", "text-indent",
    "font-weight", "font-style", "font-size", "font-variant", "line-height", "letter-spacing",
    "border", "border-top", "border-right", "border-bottom", "border-left",
    "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "width", "min-width", "max-width", "height", "min-height", "max-height",
})
# Removed together with their content: their text is code or markup, never the output to read.
CONTENT_DROPPED = frozenset({
    "script", "style", "template", "noscript", "noembed", "noframes", "iframe", "object", "applet",
    "svg", "math", "textarea", "select", "title", "xmp", "plaintext", "head", "video", "audio", "canvas",
})
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml)[;,]", re.IGNORECASE)
_NUMBER = re.compile(r"\s*\d{1,4}\s*")
_STYLE_FUNCTION = re.compile(r"(?:rgba?|hsla?|calc)\([\w\s#%.,+*/-]*\)", re.IGNORECASE)
_STYLE_PLAIN = re.compile(r"[\w\s#%.,;:!+-]*")


def _attribute(tag: str, name: str, value: str) -> str | None:
    """Per-value checks the allow-lists cannot express; ``None`` drops the attribute."""
    if name == "src":
        return value if _DATA_IMAGE.match(value) else None
    if name == "style":  # then nh3 keeps the allowed properties of what passed
        return value if _STYLE_PLAIN.fullmatch(_STYLE_FUNCTION.sub("", value)) else None
    if name in ("colspan", "rowspan", "span", "start", "border", "width", "height"):
        return value.strip() if _NUMBER.fullmatch(value) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(TAGS),
    clean_content_tags=set(CONTENT_DROPPED),
    attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
    attribute_filter=_attribute,
    filter_style_properties=set(STYLE_PROPERTIES),
    url_schemes={"data"},
    url_relative="deny",
    strip_comments=True,
    link_rel=None,
)


def sanitize_html(source: str) -> str:
    """Notebook HTML (a pandas table) safe to embed in a page that is opened anywhere: it can
    neither run script nor make the browser fetch anything."""
    return _CLEANER.clean(source)
