"""Recognise video containers from their first bytes (frame hashing comes with the video work).

Until videos are hashed frame by frame they are hashed as byte files, but knowing that a file
is a video matters now: an unmatched video is *new* media for review, not "other".
"""

from __future__ import annotations

__all__ = ["sniff_video_type"]

_FTYP_VIDEO = {
    b"isom": "video/mp4",
    b"iso2": "video/mp4",
    b"iso4": "video/mp4",
    b"iso5": "video/mp4",
    b"iso6": "video/mp4",
    b"mp41": "video/mp4",
    b"mp42": "video/mp4",
    b"avc1": "video/mp4",
    b"dash": "video/mp4",
    b"M4V ": "video/x-m4v",
    b"M4VH": "video/x-m4v",
    b"qt  ": "video/quicktime",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
    b"3gp6": "video/3gpp",
    b"3g2a": "video/3gpp2",
    b"mmp4": "video/mp4",
    b"MSNV": "video/mp4",
    b"f4v ": "video/x-f4v",
}


def sniff_video_type(head: bytes) -> str | None:
    """A video MIME type for the container whose first bytes are ``head``, or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _FTYP_VIDEO:
            return _FTYP_VIDEO[brand]
        if brand.startswith(b"3g"):
            return "video/3gpp"
        return None
    if (
        len(head) >= 8
        and head[4:8] in (b"moov", b"mdat", b"wide", b"free")
        and head[:2] == b"\x00\x00"
    ):
        return "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska or WebM
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"FLV\x01"):
        return "video/x-flv"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return "video/mpeg"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:  # MPEG-TS sync bytes
        return "video/mp2t"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "video/x-ms-wmv"
    return None
