"""Reading uploads: media into memory (never onto disk), list files streamed into a spool file.

Starlette's form parser spools file parts bigger than 1 MiB to the system's temporary
directory. Uploaded media must never touch disk, so media endpoints read the raw body
themselves, capped at the upload limit (413 beyond it, checked against ``Content-Length`` first
and again while streaming), and split the multipart body in memory with ``python_multipart``.
A list file is parsed as it arrives and its part written to a file the caller gives (a
:class:`~hashwatch.web.spool.Spool` file), stopped with 413 at its byte budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from hashwatch.web.auth import ApiError

__all__ = ["read_body", "read_media_part", "receive_file_part"]

MAX_BOUNDARY = 256  # characters (RFC 2046 allows 70)


class _Part:
    """The part being parsed: its headers so far and its bytes."""

    def __init__(self) -> None:
        self.hfield = b""
        self.hvalue = b""
        self.name: str | None = None
        self.filename = "upload"


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


def _boundary(content_type: str) -> bytes:
    _ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(422, "multipart body without a boundary")
    if len(boundary) > MAX_BOUNDARY:
        raise ApiError(422, f"the multipart boundary is over {MAX_BOUNDARY} characters")
    return bytes(boundary)


class _PartParser:
    """A streaming multipart parser handing each part's bytes to ``sink(name, data)``."""

    def __init__(self, content_type: str, sink: Callable[[str | None, bytes], None]) -> None:
        self.names: dict[str, str] = {}  # field -> file name, for parts that ended
        self._cur = _Part()

        def on_part_begin() -> None:
            self._cur = _Part()

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self._cur.hfield += data[start:end]
            self._check_header()

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self._cur.hvalue += data[start:end]
            self._check_header()

        def on_header_end() -> None:
            cur = self._cur
            if cur.hfield.lower() == b"content-disposition":
                _disp, opts = parse_options_header(cur.hvalue)
                name = opts.get(b"name")
                cur.name = name.decode("utf-8", "replace") if name is not None else None
                filename = opts.get(b"filename")
                cur.filename = filename.decode("utf-8", "replace") if filename else "upload"
            cur.hfield = b""
            cur.hvalue = b""

        def on_part_data(data: bytes, start: int, end: int) -> None:
            name = self._cur.name
            if name is not None and name not in self.names:  # the first part of a name counts
                sink(name, data[start:end])

        def on_part_end() -> None:
            cur = self._cur
            if cur.name is not None and cur.name not in self.names:
                self.names[cur.name] = cur.filename

        boundary = _boundary(content_type)
        try:
            self._parser = MultipartParser(
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
        except Exception as exc:  # python_multipart raises its own error types
            raise ApiError(422, f"malformed multipart body: {exc}") from None

    def _check_header(self) -> None:
        if len(self._cur.hfield) + len(self._cur.hvalue) > 16 * 1024:
            raise ApiError(422, "a multipart part header is over 16 KiB")

    def write(self, data: bytes) -> None:
        try:
            self._parser.write(data)
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(422, f"malformed multipart body: {exc}") from None

    def finalize(self) -> None:
        try:
            self._parser.finalize()
        except Exception as exc:
            raise ApiError(422, f"malformed multipart body: {exc}") from None


def read_media_part(body: bytes, content_type: str, field: str = "file") -> tuple[bytes, str]:
    """The bytes and file name of the multipart part ``field``, parsed in memory (422 if absent)."""
    parts: dict[str, bytearray] = {}

    def sink(name: str | None, data: bytes) -> None:
        parts.setdefault(name or "", bytearray()).extend(data)

    parser = _PartParser(content_type, sink)
    parser.write(body)
    parser.finalize()
    if field not in parser.names:
        raise ApiError(422, f"the multipart field {field!r} (the media file) is missing")
    return bytes(parts.get(field, b"")), parser.names[field][:200]


async def receive_file_part(
    request: Request, out: BinaryIO, limit: int, field: str = "file"
) -> str:
    """Stream the multipart part ``field`` of the request into ``out`` as it arrives, stopped
    with 413 once it exceeds ``limit`` bytes; returns the part's file name (422 if absent)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise ApiError(415, f"send the file as multipart/form-data with a {field!r} field")
    written = 0

    def sink(name: str | None, data: bytes) -> None:
        nonlocal written
        if name != field:
            return
        written += len(data)
        if written > limit:
            raise ApiError(413, f"the file exceeds the limit of {limit} bytes")
        out.write(data)

    parser = _PartParser(ctype, sink)
    async for chunk in request.stream():
        parser.write(chunk)
    parser.finalize()
    if field not in parser.names:
        raise ApiError(422, f"the multipart field {field!r} (the file) is missing")
    return parser.names[field][:200]
