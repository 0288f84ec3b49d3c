"""Plain text out of HTML and XML, with the standard library's `html.parser`.

Annotation offsets refer to the text made here, not to the markup. HTML (text/html and
application/xhtml+xml): the content of `script`, `style`, `template` and `noscript` is
dropped, runs of whitespace become one space, block elements (p, div, br, li, h1-h6, tr,
...) start a new line, and `pre` keeps its text as it is. XML (text/xml, application/xml):
the text content exactly as written, CDATA included, without the tags, comments and
processing instructions. Character and entity references are resolved in both."""

from __future__ import annotations

import re
from html.parser import HTMLParser

HTML_TYPES = ("text/html", "application/xhtml+xml")
XML_TYPES = ("text/xml", "application/xml")

_DROPPED = {"script", "style", "template", "noscript"}
_BLOCKS = {
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
    "summary", "table", "td", "th", "title", "tr", "ul",
}
_BLANKS = re.compile(r"\s+")


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.dropped = 0  # depth inside script/style/...
        self.pre = 0

    def _ends_with_break(self) -> bool:
        return not self.out or self.out[-1].endswith("\n")

    def _newline(self) -> None:
        if self.out and self.out[-1].endswith(" "):
            self.out[-1] = self.out[-1].rstrip(" ")
        if not self._ends_with_break():
            self.out.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self.dropped += 1
        if tag in _BLOCKS:
            self._newline()
        if tag == "pre":
            self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED and self.dropped:
            self.dropped -= 1
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in _BLOCKS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.dropped:
            return
        if self.pre:
            self.out.append(data)
            return
        data = _BLANKS.sub(" ", data)
        if data.startswith(" ") and (self._ends_with_break() or self.out[-1].endswith(" ")):
            data = data[1:]
        if data:
            self.out.append(data)


class _XmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def unknown_decl(self, data: str) -> None:
        if data.startswith("CDATA["):
            self.out.append(data[len("CDATA["):])


def html_to_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return "".join(parser.out).strip()


def xml_to_text(markup: str) -> str:
    parser = _XmlText()
    parser.feed(markup)
    parser.close()
    return "".join(parser.out)
