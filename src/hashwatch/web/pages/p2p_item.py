"""A P2P client record on a review page: its facts in place of a picture.

A P2P record (``CaseItem.p2p``, see :mod:`hashwatch.scan.p2p.scan_records`) names a file a
client shared or downloaded; there is no media to show or reveal. The reviewer confirms it by
what the record says: client, artifact, the file's name, size and dates, and the list entry
its hash matched.
"""

from __future__ import annotations

from html import escape
from typing import Any

from hashwatch.review.cases import CaseItem

__all__ = ["p2p_item_block"]


def _e(value: object) -> str:
    return escape("—" if value is None else str(value), quote=True)


def _state(p2p: dict[str, Any]) -> str:
    if p2p.get("complete") is True:
        return "complete"
    if p2p.get("completeness") is not None:
        return f"{float(p2p['completeness']) * 100:.0f}% downloaded"
    return "in progress" if p2p.get("complete") is False else "not recorded"


def p2p_item_block(item: CaseItem) -> str:
    """The item's block: the record's facts and matches (no image, nothing to reveal)."""
    p2p = item.p2p or {}
    facts: list[tuple[str, Any]] = [
        ("Client", p2p.get("client")),
        ("Artifact", f"{p2p.get('artifact')}: {p2p.get('artifact_path')}"),
        ("Record", p2p.get("index")),
        ("File name", p2p.get("name")),
        ("Size (bytes)", p2p.get("size")),
        ("State", _state(p2p)),
        ("Save path", p2p.get("save_path")),
    ]
    facts += [(k.replace("_", " "), v) for k, v in sorted((p2p.get("dates") or {}).items())]
    facts += [(k, v) for k, v in sorted((p2p.get("hashes") or {}).items())]
    if p2p.get("linked_paths"):
        facts.append(("File in evidence", "; ".join(p2p["linked_paths"])))
    if p2p.get("unmatchable"):
        facts.append(("Cannot be matched", p2p["unmatchable"]))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    matches = "".join(
        f"<li>list {_e(m.get('list'))}: category {_e(m.get('category'))}, "
        f"entry {_e(m.get('entry_id'))}, exact {_e(m.get('hash_type'))}</li>"
        for m in item.matches
    )
    return (
        f'<figure class="item p2p" data-item="{item.id}">'
        '<p class="p2p-note">A P2P client record, not a file: there is no picture. It says '
        "that the client shared or downloaded a file with this hash, under this name.</p>"
        f'<dl class="p2p" aria-label="P2P record">{rows}</dl>'
        f'<figcaption><span class="path">{_e(item.root)} / {_e(item.path)}</span> · '
        f"P2P record · {_e(item.scan_status)}"
        f'<br><span class="reasons">{_e("; ".join(item.reasons))}</span>'
        f'<ul class="matches" aria-label="matches">{matches}</ul></figcaption></figure>'
    )
