"""Staff-written markdown as HTML: CommonMark without raw HTML (nobody can inject a script), with
headings kept below the heading the text sits under, so a page's (or an email's) heading order
holds (a ``#`` in an update under an ``h3`` becomes an ``h4``, not a second ``h1``)."""

from __future__ import annotations

from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


def render_markdown(text: str, below: int = 0) -> str:
    tokens = _markdown.parse(text or "")
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1:]) + below)}"
    return str(_markdown.renderer.render(tokens, _markdown.options, {}))
