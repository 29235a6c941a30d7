"""Notebook HTML made safe to embed in a report: table and text markup only, re-escaped, balanced."""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_ALLOWED_TAGS = frozenset({
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "colgroup", "col",
    "div", "span", "p", "br", "hr", "b", "i", "u", "s", "em", "strong", "small", "code", "pre", "sub", "sup",
    "ul", "ol", "li", "abbr",
})
_VOID_TAGS = frozenset({"br", "hr", "col", "img", "input", "meta", "link", "base", "area", "source", "wbr", "embed",
                        "param", "track"})
_DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "object", "embed", "applet", "template", "noscript", "noembed", "noframes",
    "frame", "frameset", "svg", "math", "textarea", "select", "title", "head", "xmp", "plaintext", "canvas",
    "video", "audio",
})
_ALLOWED_ATTRIBUTES = frozenset({"class", "colspan", "rowspan", "align", "valign", "halign", "title", "style", "border"})
_UNSAFE_STYLE = re.compile(r"url\s*\(|expression\s*\(|javascript:|@import|behavior\s*:|[<>\\]", re.IGNORECASE)


class _Sanitizer(HTMLParser):
    """Rebuilds HTML keeping only table and text markup and harmless attributes; every text and
    attribute value re-escaped; tags balanced, so the embedded HTML cannot break the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.dropping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.dropping:
            if tag in _DROPPED_WITH_CONTENT and tag not in _VOID_TAGS:
                self.dropping.append(tag)
            return
        if tag in _DROPPED_WITH_CONTENT:
            if tag not in _VOID_TAGS:
                self.dropping.append(tag)
            return
        if tag not in _ALLOWED_TAGS:
            return
        kept = []
        for name, value in attrs:
            name = name.lower()
            if name not in _ALLOWED_ATTRIBUTES or name.startswith("on"):
                continue
            value = value or ""
            if name == "style" and _UNSAFE_STYLE.search(value):
                continue
            if name in ("colspan", "rowspan") and not value.strip().isdigit():
                continue
            kept.append(f' {name}="{html.escape(value, quote=True)}"')
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag not in _VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS and self.open and self.open[-1] == tag and not self.dropping:
            self.handle_endtag(tag)
        elif tag not in _VOID_TAGS and self.dropping and self.dropping[-1] == tag:
            self.dropping.pop()

    def handle_endtag(self, tag: str) -> None:
        if self.dropping:
            if tag == self.dropping[-1]:
                self.dropping.pop()
            return
        if tag not in self.open:
            return
        while self.open:
            top = self.open.pop()
            self.out.append(f"</{top}>")
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{tag}>" for tag in reversed(self.open))


def sanitize_html(source: str) -> str:
    """Notebook HTML (a pandas table) safe to embed: no scripts, styles, event handlers, links or
    external resources; only table and text markup with class/span/alignment attributes."""
    sanitizer = _Sanitizer()
    sanitizer.feed(source)
    return sanitizer.result()
