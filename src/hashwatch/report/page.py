"""The page's building blocks: status words and colours, the :class:`Page` being written
(with its blurred thumbnails and their reveal toggles) and small HTML helpers.

Everything here escapes what it is given; callers pass text, not markup, except where a
parameter says HTML.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hashwatch.report.charts import PALETTE, esc, short

__all__ = [
    "STATUS_COLOUR",
    "STATUS_ORDER",
    "STATUS_TEXT",
    "Page",
    "file_name",
    "image_type",
    "more_html",
    "paths_html",
    "section_html",
    "size_text",
    "when_text",
]

STATUS_TEXT: dict[str, tuple[str, str]] = {
    "new": (
        "New",
        "An image or video that matches no list: never seen by the lists used. "
        "Review these first; near-duplicates are grouped into clusters.",
    ),
    "known": (
        "Known",
        "Matches an entry of a known hash list. An alert to review: the category and "
        "series are what the list's curator recorded.",
    ),
    "ignorable": (
        "Ignorable",
        "Found only in ignorable lists (such as NSRL software files), so kept out of "
        "review. Known to a list does not mean harmless.",
    ),
    "other": ("Other", "Not an image or video, and matched no list. Not listed here."),
    "error": ("Error", "Could not be read or decoded: not checked. The reason is listed."),
}
STATUS_ORDER = ("new", "known", "ignorable", "other", "error")
STATUS_COLOUR = dict(
    zip(STATUS_ORDER, (PALETTE[0], PALETTE[1], PALETTE[6], "#c4c4c4", PALETTE[3]), strict=True)
)


class Page:
    """Builds the page's HTML; hands out the element ids the reveal toggles need."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._n = 0

    def add(self, *html: str) -> None:
        self.parts.extend(html)

    def thumb(self, data: bytes | None, alt: str, path: str, badge: str = "") -> str:
        """A blurred thumbnail with its own reveal toggle; a placeholder when there is none."""
        caption = f'<figcaption title="{esc(path)}">{esc(short(file_name(path), 26))}</figcaption>'
        mark = f'<span class="badge">{esc(badge)}</span>' if badge else ""
        kind = image_type(data)
        if data is None or kind is None:
            return f'<figure class="thumb"><div class="frame">{mark}none</div>{caption}</figure>'
        self._n += 1
        ident = f"rv{self._n}"
        uri = f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
        return (
            f'<figure class="thumb"><input type="checkbox" class="reveal" id="{ident}">'
            f'<div class="frame">{mark}<img class="blur" src="{uri}" alt="{esc(alt)}"></div>'
            f'<label for="{ident}"><span class="show">Reveal</span><span class="hide">Blur'
            f'</span><span class="sr"> {esc(alt)}</span></label>{caption}</figure>'
        )


def image_type(data: bytes | None) -> str | None:
    """The MIME type of a JPEG or PNG thumbnail; anything else is not put in the page."""
    if data and data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data and data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1] or path


def paths_html(paths: Iterable[str], total: int, what: str = "paths") -> str:
    items = [f'<li class="path">{esc(p)}</li>' for p in paths]
    return f'<ol class="paths">{"".join(items)}</ol>{more_html(total - len(items), what)}'


def more_html(left: int, what: str) -> str:
    if left <= 0:
        return ""
    return f'<p class="more">…and {left:,} more {what}: every record is in results.jsonl.</p>'


def when_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    text = str(value) if value is not None else "—"
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def size_text(n: int) -> str:
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    value, unit = float(n), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{n:,} bytes" if unit == 0 else f"{value:,.1f} {units[unit]}"


def section_html(ident: str, title: str, count: str, text: str) -> str:
    return (
        f'<section id="{ident}" aria-labelledby="{ident}-h"><h2 id="{ident}-h">{esc(title)}'
        f"{f' <span class=count>{esc(count)}</span>' if count else ''}</h2>"
        f"{f'<p class=explain>{text}</p>' if text else ''}"
    )
