"""Staff-written markdown as plain text, for an update email's text part: what a reader of the
text part should see, not the markup (``**``, ``[words](link)``, ``#``). Paragraphs stay
paragraphs, list items keep a ``-`` or their number, a link becomes "words (address)", a heading
is underlined, a quote keeps ``>``, code stays as written. Raw HTML is not rendered (as in the
HTML part): it is shown as the text it is."""

from __future__ import annotations

from typing import Any

from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


def _inline(token: Any) -> str:
    out: list[str] = []
    links: list[str] = []
    for child in token.children or []:
        kind = child.type
        if kind in ("text", "code_inline"):
            out.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "link_open":
            links.append(str(child.attrs.get("href", "")))
            out.append("\0")  # where the link's words start
        elif kind == "link_close":
            href = links.pop() if links else ""
            start = max(i for i, part in enumerate(out) if part == "\0")
            words = "".join(out[start + 1 :])
            out[start:] = [
                words if not href or href in (words, f"mailto:{words}") else f"{words} ({href})"
            ]
        elif kind == "image":
            out.append(child.content or "")
    return "".join(out)


def markdown_as_text(text: str) -> str:
    tokens = _markdown.parse(text or "")
    blocks: list[tuple[str, int | None]] = []  # (text, the list it is an item of)
    opened = 0
    prefix: list[str] = []  # "> " per quote level
    lists: list[list[int]] = []  # per open list: [its id, next number (ordered: else 0)]
    item_marker: str | None = None
    heading: int | None = None
    for token in tokens:
        kind = token.type
        if kind == "blockquote_open":
            prefix.append("> ")
        elif kind == "blockquote_close":
            prefix.pop()
        elif kind in ("bullet_list_open", "ordered_list_open"):
            opened += 1
            ordered = kind == "ordered_list_open"
            lists.append([opened, int(token.attrs.get("start", 1) or 1) if ordered else 0])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            current = lists[-1] if lists else [0, 0]
            item_marker = f"{current[1]}. " if current[1] else "- "
            current[1] += 1 if current[1] else 0
        elif kind == "heading_open":
            heading = int(token.tag[1:])
        elif kind == "inline":
            words = _inline(token)
            if heading is not None:
                words = f"{words}\n{('=' if heading == 1 else '-') * len(words)}"
                heading = None
            indent, group = "  " * max(0, len(lists) - 1), None
            if item_marker is not None:
                group = lists[-1][0] if lists else None
                lines = words.split("\n")
                words = "\n".join(
                    [indent + item_marker + lines[0]]
                    + [indent + " " * len(item_marker) + line for line in lines[1:]]
                )
                item_marker = None
            lines = words.split("\n")
            blocks.append(("\n".join("".join(prefix) + line for line in lines), group))
        elif kind in ("fence", "code_block"):
            code = token.content.rstrip("\n")
            lines = code.split("\n")
            blocks.append(("\n".join("".join(prefix) + "    " + line for line in lines), None))
        elif kind == "hr":
            blocks.append(("".join(prefix) + "-" * 20, None))
        elif kind == "html_block":
            blocks.append(("".join(prefix) + token.content.rstrip("\n"), None))
    out: list[str] = []
    last: int | None = None
    for block, group in blocks:  # a list's items sit together; other blocks are paragraphs
        if out and (group is None or group != last):
            out.append("")
        out.append(block)
        last = group
    return "\n".join(out).strip("\n")
