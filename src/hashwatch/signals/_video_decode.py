"""Keyframe-first sampling of one video stream: ``hash_video(..., sampling="fast")``.

The rule (why: see :mod:`hashwatch.signals.video`): presentation time, counted from the first
keyframe, is cut into slots of ``frame_interval`` seconds; each slot gets one frame.

* A slot holding a keyframe gets its first keyframe. Only that packet of its GOP is sent to
  the decoder when nothing else of the GOP is wanted.
* A slot without one gets the frame of the slot that comes first in decoding order, the
  cheapest to reach, or the frame vPDQ hashes (frame number ``k * n``) when that is at most
  :data:`_VPDQ_REACH` packets further (with B-frames it usually is: it is displayed first but
  decoded after the P-frame it refers to). The GOP is decoded from its keyframe up to that
  packet, every packet but the wanted ones with ``skip_frame = NONREF`` (frames nothing refers
  to, most B-frames, are skipped; the frames that are decoded come out bit for bit as in a full
  decode). Packets after the last wanted one are never sent. A slot whose only frames are
  leading pictures of an open GOP (they refer to the previous GOP, not decoded) gets none.
* Decoding is per GOP: its packets, then a drain and ``flush_buffers``, as after a seek.

With ``max_decodes`` at most that many packets are sent to the decoder (the caller's decode
budget); past it nothing more is decoded, :attr:`KeyframeSampler.exhausted` is set, and the
frames hashed until then are kept.

With ``keyframes_only`` (``sampling="keyframes"``) slots without a keyframe get no frame: only
keyframes are decoded, and the frames hashed are as far apart as the keyframes (at most one per
slot).

Packets are read once, in decoding order, and a GOP is held (compressed) until the next
keyframe shows whether a slot has a keyframe; past :data:`_HOLD_BYTES` the held packets are
planned and sent at once (a stream with very rare keyframes may then hash a decoded frame where
a later keyframe of the same slot would have been cheaper).

Frame numbers are the rank of a frame's timestamp among those of all packets: the index a full
decode would give it, provided every packet is one picture and timestamps are presentation
times. Where that cannot be trusted, :class:`NeedExact` is raised and the caller decodes
everything: the first packet is no keyframe (no keyframe flags, or a stream cut mid-GOP); a
packet has no timestamp, or two share one; the first GOP has leading pictures (a full decode
may drop them); the container stores decoding times only and the codec reorders frames
(:func:`timestamps_reorder`: AVI, elementary streams); decoded frames come out of timestamp
order; or a packet sent to the decoder gives no frame.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable
from typing import Any

from hashwatch.errors import DecodeError

__all__ = ["KeyframeSampler", "NeedExact", "timestamps_reorder"]

# Demuxers whose packets carry decoding times only; with B-frames they are no presentation order.
_DECODE_ORDER_FORMATS = {
    "avi",
    "h264",
    "hevc",
    "vvc",
    "m4v",
    "mpegvideo",
    "h263",
    "vc1",
    "cavsvideo",
}
_HOLD_BYTES = 32 * 1024 * 1024  # compressed packets held for one GOP before it is planned anyway
_VPDQ_REACH = 4  # packets past a slot's cheapest frame worth decoding to hash vPDQ's frame
_EPSILON = 1e-6  # of a slot: a frame exactly on a slot boundary opens the next slot

HashFrame = Callable[[Any], tuple[str, int]]


class NeedExact(Exception):
    """Timestamps cannot number the frames as a full decode would: decode every frame."""


def timestamps_reorder(container: Any, stream: Any) -> bool:
    """True when packet timestamps are decoding times of a stream that reorders frames."""
    names = set(str(container.format.name).split(","))
    return bool(names & _DECODE_ORDER_FORMATS) and bool(stream.codec_context.has_b_frames)


class KeyframeSampler:
    """Feed it a stream's packets in demuxing order, then :meth:`finish`; see the module doc.

    ``frames()`` gives ``(frame_number, pdq, quality)`` of the hashed frames; ``packets`` is the
    number of pictures in the stream; ``error`` the first decoding error (decoding resumes at the
    next keyframe).
    """

    def __init__(
        self,
        codec_context: Any,
        time_base: float,
        interval: float,
        vpdq_step: int,
        hash_frame: HashFrame,
        *,
        keyframes_only: bool = False,
        max_decodes: int | None = None,
    ) -> None:
        import av  # loaded already by whoever opened the codec context; lazy for importers

        self._errors: tuple[type[Exception], ...] = (av.FFmpegError, ValueError, MemoryError)
        self._cc = codec_context
        self._max_decodes = max_decodes
        self.decodes = 0  # packets sent to the decoder
        self.exhausted = False  # a packet was not decoded for want of budget
        self._keyframes_only = keyframes_only  # slots without a keyframe get no frame
        self._scale = time_base / interval  # timestamp units -> slots
        self._step = vpdq_step  # vPDQ hashes frames step * n
        self._hash_frame = hash_frame
        self._origin: int | None = None  # timestamp of the first keyframe: slot 0 starts there
        self._checked_first_gop = False
        self._pending: list[tuple[Any, int]] = []  # packets of this GOP not sent yet
        self._pending_bytes = 0
        self._key_pts: int | None = None  # this GOP's keyframe
        self._decoding = False  # packets of this GOP were sent
        self._broken = False  # the decoder failed in this GOP: skip to the next keyframe
        self._last_out: int | None = None
        self._filled: set[int] = set()
        self._wanted: set[int] = set()
        self._hashes: dict[int, tuple[str, int]] = {}
        self._all_pts: list[int] = []  # sorted
        self.error: str | None = None

    @property
    def packets(self) -> int:
        """Pictures seen so far (packets with a timestamp, not marked to be discarded)."""
        return len(self._all_pts)

    def feed(self, packet: Any) -> None:
        """One demuxed packet of the stream (empty and discardable packets are ignored)."""
        if not packet.size or packet.is_discard:
            return
        pts = packet.pts
        if pts is None:
            raise NeedExact("a packet has no timestamp")
        if packet.is_keyframe:
            if self._key_pts is not None:
                self._finish_gop(next_key=pts)
            elif self._origin is None:
                self._origin = pts
            self._key_pts = pts
        elif self._key_pts is None:
            raise NeedExact("the stream does not start with a keyframe")
        bisect.insort(self._all_pts, pts)  # (timestamps mostly grow: an append, mostly)
        self._pending.append((packet, pts))
        self._pending_bytes += packet.size
        if self._pending_bytes > _HOLD_BYTES:
            self._plan(next_key=None)
            self._send(len(self._pending))

    def finish(self) -> None:
        """The stream ended (or could not be read further): decode what the last GOP needs."""
        if self._key_pts is not None:
            self._finish_gop(next_key=None)

    def frames(self) -> list[tuple[int, str, int]]:
        """``(frame_number, pdq, quality)`` by frame number; raises NeedExact on shared stamps."""
        ordered = self._all_pts
        if any(a == b for a, b in itertools.pairwise(ordered)):
            raise NeedExact("two packets share a timestamp")
        return sorted(
            (bisect.bisect_left(ordered, pts), pdq, quality)
            for pts, (pdq, quality) in self._hashes.items()
        )

    def _slot(self, pts: int) -> int:
        assert self._origin is not None
        return math.floor((pts - self._origin) * self._scale + _EPSILON)

    def _finish_gop(self, next_key: int | None) -> None:
        self._send(self._plan(next_key) + 1)
        self._drain()
        self._pending.clear()
        self._pending_bytes = 0
        self._broken = False

    def _plan(self, next_key: int | None) -> int:
        """Choose this GOP's frames among the held packets; the index of the last one, or -1.

        ``next_key`` is the next GOP's keyframe: its slot is left to it. None when unknown
        (end of stream, or the GOP held too much): every slot seen here is filled.
        """
        key = self._key_pts
        assert key is not None
        if not self._checked_first_gop:
            self._checked_first_gop = True
            if any(pts < key for _, pts in self._pending):
                raise NeedExact("the first GOP has leading pictures")
        keyframe_slot = self._slot(next_key) if next_key is not None else None
        last = -1
        candidates: dict[int, list[tuple[int, int]]] = {}
        for index, (_, pts) in enumerate(self._pending):
            if pts < key:
                continue  # a leading picture: it refers to the previous GOP, never decoded here
            slot = self._slot(pts)
            if slot in self._filled or (slot == keyframe_slot and pts != key):
                continue  # (a slot's first keyframe is preferred to its other frames)
            if pts == key:
                self._filled.add(slot)
                self._wanted.add(pts)
                last = index
            elif not self._keyframes_only:
                candidates.setdefault(slot, []).append((index, pts))
        for slot, found in candidates.items():
            index, pts = self._choose(found)
            self._filled.add(slot)
            self._wanted.add(pts)
            last = max(last, index)
        return last

    def _choose(self, found: list[tuple[int, int]]) -> tuple[int, int]:
        """Among a slot's ``(index, pts)`` in decoding order: vPDQ's frame if near, else the first.

        With content that changes fast, vPDQ's frame is the one whose hash lists made by vPDQ
        hold; a few packets more (most of them B-frames that are skipped anyway) buy it.
        """
        reach = found[0][0] + _VPDQ_REACH
        ranked = [
            (rank, index, pts)
            for index, pts in found
            if index <= reach and (rank := bisect.bisect_left(self._all_pts, pts)) % self._step == 0
        ]
        if ranked:
            _, index, pts = min(ranked)
            return index, pts
        return found[0]

    def _send(self, count: int) -> None:
        """Decode the first ``count`` held packets; wanted ones in full, others NONREF."""
        sent, self._pending = self._pending[:count], self._pending[count:]
        self._pending_bytes -= sum(packet.size for packet, _ in sent)
        for packet, pts in sent:
            if self._broken or self.exhausted:
                return
            if self._max_decodes is not None and self.decodes >= self._max_decodes:
                self.exhausted = True
                return
            self.decodes += 1
            self._cc.skip_frame = "DEFAULT" if pts in self._wanted else "NONREF"
            self._decoding = True
            try:
                decoded = self._cc.decode(packet)
            except self._errors as exc:
                self._fail(exc)
                return
            self._take(decoded)

    def _drain(self) -> None:
        """Take the frames the decoder still holds and reset it for the next keyframe."""
        if not self._decoding:
            return
        try:
            if not self._broken:
                self._take(self._cc.decode(None))
        except self._errors as exc:
            self._fail(exc)
        self._cc.flush_buffers()
        self._decoding = False
        self._last_out = None
        if self._wanted and not self._broken and not self.exhausted:
            # A frame sent was not returned: a full decode would not count it either.
            raise NeedExact("the decoder returned fewer frames than packets")
        self._wanted.clear()

    def _take(self, decoded: list[Any]) -> None:
        for frame in decoded:
            pts = frame.pts
            if pts is None:
                continue
            if self._last_out is not None and pts <= self._last_out:
                raise NeedExact("decoded frames come out of timestamp order")
            self._last_out = pts
            if pts not in self._wanted:
                continue
            self._wanted.discard(pts)
            try:
                self._hashes[pts] = self._hash_frame(frame)
            except DecodeError as exc:
                self.error = self.error or f"frame at timestamp {pts}: {exc}"

    def _fail(self, exc: BaseException) -> None:
        self._broken = True
        if self.error is None:
            self.error = f"decoding failed in the GOP starting at timestamp {self._key_pts}: {exc}"
