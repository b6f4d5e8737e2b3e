"""Reading uploaded media into memory, never onto disk.

Starlette's form parser spools file parts bigger than 1 MiB to a temporary file. Uploaded
media must never touch disk, so media endpoints read the raw body themselves, capped at the
upload limit (413 beyond it, checked against ``Content-Length`` first and again while
streaming), and split the multipart body in memory with ``python_multipart``.
"""

from __future__ import annotations

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from hashwatch.web.auth import ApiError

__all__ = ["read_body", "read_media_part"]


class _Part:
    """The part being parsed: its headers so far and its bytes."""

    def __init__(self) -> None:
        self.hfield = b""
        self.hvalue = b""
        self.name: str | None = None
        self.filename = "upload"
        self.data = bytearray()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the upload exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the upload exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def read_media_part(body: bytes, content_type: str, field: str = "file") -> tuple[bytes, str]:
    """The bytes and file name of the multipart part ``field``, parsed in memory (422 if absent)."""
    _ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(422, "multipart body without a boundary")
    parts: dict[str, bytearray] = {}
    filenames: dict[str, str] = {}
    cur = _Part()

    def on_part_begin() -> None:
        nonlocal cur
        cur = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        cur.hfield += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        cur.hvalue += data[start:end]

    def on_header_end() -> None:
        if cur.hfield.lower() == b"content-disposition":
            _disp, opts = parse_options_header(cur.hvalue)
            name = opts.get(b"name")
            cur.name = name.decode("utf-8", "replace") if name is not None else None
            filename = opts.get(b"filename")
            cur.filename = filename.decode("utf-8", "replace") if filename else "upload"
        cur.hfield = b""
        cur.hvalue = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        cur.data.extend(data[start:end])

    def on_part_end() -> None:
        if cur.name is not None and cur.name not in parts:
            parts[cur.name] = cur.data
            filenames[cur.name] = cur.filename

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python_multipart raises its own error types
        raise ApiError(422, f"malformed multipart body: {exc}") from None
    if field not in parts:
        raise ApiError(422, f"the multipart field {field!r} (the media file) is missing")
    return bytes(parts[field]), filenames[field][:200]
