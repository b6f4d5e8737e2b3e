"""HTML of the review pages: plain strings with every value escaped (``html.escape``).

No inline script or style: the pages load ``/review/static/review.js`` and ``review.css``
only, under a strict ``Content-Security-Policy``. Buttons are ``<button>`` elements with
``aria-label``s, so every key has a mouse and screen-reader equivalent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from hashwatch.review.cases import CaseInfo, CaseItem, CaseStatus
from hashwatch.review.rows import QueueEntry, TargetView
from hashwatch.web.pages.p2p_item import p2p_item_block

__all__ = [
    "case_page",
    "cases_page",
    "category_keys",
    "layout",
    "lead_page",
    "login_page",
    "split_form",
    "target_page",
]

STATES = ("settled", "pending", "voted", "disputed")


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def q(value: str) -> str:
    return quote(value, safe="")


def case_url(case: str) -> str:
    return f"/review/cases/{q(case)}"


def target_url(case: str, target: str) -> str:
    return f"{case_url(case)}/targets/{q(target)}"


def layout(title: str, body: str, *, user: str | None = None, csrf: str | None = None) -> str:
    meta = f'<meta name="csrf-token" content="{e(csrf)}">' if csrf else ""
    nav = ""
    if user:
        nav = (
            '<nav aria-label="main"><a href="/review">Cases</a> '
            '<a href="/review/me">Your settings and exposure</a> '
            f'<span class="who">signed in as {e(user)}</span> '
            '<form method="post" action="/review/logout" class="inline">'
            f'<input type="hidden" name="csrf_token" value="{e(csrf)}">'
            '<button type="submit" aria-label="sign out">Sign out</button></form>'
            '<button type="button" id="help-button" aria-label="keyboard help">?</button></nav>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)} · hashwatch review</title>{meta}"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="/review/static/review.css">'
        '<script src="/review/static/review.js" defer></script></head><body>'
        f"<header>{nav}<h1>{e(title)}</h1></header><main>{body}</main>"
        f"{_help()}</body></html>"
    )


def _help() -> str:
    keys = [
        ("1 … n", "vote the category with that key (shown on each button)"),
        ("n", "not relevant"),
        ("j / k", "next / previous target"),
        ("u", "undo: go back to the target you just voted on, to change your vote"),
        ("f", "mark the target: needs a second look (with the note typed beside it)"),
        ("x", "split the selected item off its cluster, to decide it alone"),
        ("hold R or space", "reveal the selected picture; it is blurred again on release"),
        ("?", "show or hide this help"),
    ]
    rows = "".join(
        f"<tr><th scope='row'><kbd>{e(k)}</kbd></th><td>{e(v)}</td></tr>" for k, v in keys
    )
    return (
        '<div id="help" role="dialog" aria-label="keyboard help" hidden>'
        f"<h2>Keys</h2><table>{rows}</table>"
        '<button type="button" id="help-close" aria-label="close help">Close</button></div>'
    )


def login_page(login_token: str, error: str | None = None) -> str:
    problem = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = (
        f"{problem}"
        '<form method="post" action="/review/login" class="login">'
        f'<input type="hidden" name="login_token" value="{e(login_token)}">'
        '<label>Name <input name="name" autocomplete="username" required autofocus></label>'
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit" aria-label="sign in">Sign in</button></form>'
    )
    return layout("Sign in", body)


def _counts(status: CaseStatus) -> str:
    parts = []
    for what, counts in (
        ("items", status.items_by_review),
        ("clusters", status.clusters_by_review),
    ):
        cells = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATES)
        parts.append(f'<span class="counts" data-of="{what}">{what}: {e(cells)}</span>')
    return " · ".join(parts)


def cases_page(statuses: Sequence[CaseStatus], *, user: str, csrf: str) -> str:
    if not statuses:
        return layout("Cases", "<p>No case has been imported yet.</p>", user=user, csrf=csrf)
    rows = "".join(
        f'<li><a href="{case_url(s.case.case_uid)}">{e(_case_name(s.case))}</a> {_counts(s)}</li>'
        for s in statuses
    )
    return layout("Cases", f'<ul class="cases">{rows}</ul>', user=user, csrf=csrf)


def _case_name(case: CaseInfo) -> str:
    return case.case_number or case.case_uid


def _section(title: str, case: str, entries: Iterable[QueueEntry], note: str) -> str:
    items = []
    for entry in entries:
        target = str(entry.target)
        label = target.replace(":", " ")
        extra = ""
        if entry.list_category is not None:
            extra = (
                f' <span class="suggestion">the list says category {e(entry.list_category)}'
                " — to confirm</span>"
            )
        items.append(
            f'<li data-target="{e(target)}"><a class="queue-link" '
            f'href="{target_url(case, target)}">{e(label)}</a> '
            f'<span class="state">{e(entry.state)}</span> · {len(entry.item_ids)} item(s)'
            f'{extra}<br><span class="reasons">{e("; ".join(entry.reasons))}</span></li>'
        )
    if not items:
        return ""
    head = f'<h2>{e(title)}</h2><p class="note">{e(note)}</p>'
    return f"<section>{head}<ol>{''.join(items)}</ol></section>"


def queue_sections(case: str, queue: Sequence[QueueEntry]) -> str:
    new = [
        q_
        for q_ in queue
        if not q_.partial_video and q_.list_category is None and q_.scan_status != "known"
    ]
    known = [q_ for q_ in queue if not q_.partial_video and q_ not in new]
    partial = [q_ for q_ in queue if q_.partial_video]
    out = (
        _section("New media", case, new, "Clusters of new media first, in the scan's order.")
        + _section(
            "Known matches to confirm",
            case,
            known,
            "Pre-categorised by their list: a suggestion, not a decision.",
        )
        + _section("Partial video re-use", case, partial, "New videos that re-use known frames.")
    )
    return out or '<p class="done">Nothing left for you to review in this case.</p>'


def case_page(
    status: CaseStatus,
    queue: Sequence[QueueEntry],
    *,
    user: str,
    csrf: str,
    is_lead: bool,
    last: str | None = None,
    links: str = "",
    lane: str = "",
    page_size: int | None = None,
) -> str:
    """``page_size``: the most targets the page shows; ``links``: HTML after the progress
    line; ``lane``: the second-look lane's HTML."""
    case = status.case.case_uid
    lead = f' · <a href="{case_url(case)}/lead">Lead queue</a>' if is_lead else ""
    lead += links
    undo = _undo(case, last)
    more = (
        f'<p class="note">The next {len(queue)} targets are shown; more follow as you vote.</p>'
        if page_size is not None and len(queue) >= page_size
        else ""
    )
    first = (
        f'<a id="next" href="{target_url(case, str(queue[0].target))}" hidden></a>' if queue else ""
    )
    body = (
        f'<p class="progress" aria-label="progress">{_counts(status)}{lead}</p>'
        f"{undo}{first}{queue_sections(case, queue)}{more}{lane}"
    )
    return layout(f"Case {_case_name(status.case)}", body, user=user, csrf=csrf)


def _undo(case: str, last: str | None) -> str:
    if not last:
        return ""
    return (
        f'<p class="undo"><a id="undo" href="{target_url(case, last)}" '
        f'aria-label="undo: change your vote on {e(last)}">Undo: change your vote on '
        f"{e(last)} (u)</a></p>"
    )


def lead_page(
    case: CaseInfo, disputed: Sequence[QueueEntry], *, user: str, csrf: str, lane: str = ""
) -> str:
    uid = case.case_uid
    if not disputed:
        inner = '<p class="done">No disputed target in this case.</p>'
    else:
        inner = _section("Disputed", uid, disputed, "Reviewers did not agree: decide each one.")
    body = f'<p><a href="{case_url(uid)}">Back to the case</a></p>{inner}{lane}'
    return layout(f"Lead queue · {_case_name(case)}", body, user=user, csrf=csrf)


def category_keys(codes: Sequence[str]) -> list[tuple[str, str]]:
    """(key, code) for each category: the code itself when every code is one digit, else
    1 … 9 in the scheme's order."""
    if all(len(c) == 1 and c.isdigit() for c in codes):
        return [(c, c) for c in codes]
    return [(str(i + 1) if i < 9 else "", c) for i, c in enumerate(codes)]


def split_form(case: str, item: CaseItem, csrf: str) -> str:
    action = f"{case_url(case)}/items/{item.id}/split"
    return (
        f'<form method="post" action="{e(action)}" class="inline split">'
        f'<input type="hidden" name="csrf_token" value="{e(csrf)}">'
        f'<button type="submit" class="split" data-key="x" '
        f'aria-label="split item {item.id} off its cluster, to decide it alone">'
        "Split off (x)</button></form>"
    )


def _item_block(case: str, item: CaseItem, reveal: bool, split_csrf: str | None = None) -> str:
    if item.p2p is not None:  # a P2P client record: its facts, no media
        return p2p_item_block(item)
    base = f"/v1/cases/{q(case)}/items/{item.id}"
    video = (item.media_type or "").startswith("video")
    caption = "contact sheet (video, never played here)" if video else "thumbnail"
    exif = ""
    if item.exif:
        leads = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in sorted(item.exif.items()))
        exif = f'<dl class="exif" aria-label="EXIF leads">{leads}</dl>'
    matches = ""
    if item.matches:
        rows = "".join(
            f"<li>list {e(m.get('list'))}: category {e(m.get('category'))}, "
            f"{e(m.get('hash_type'))}, distance {e(m.get('distance'))}</li>"
            for m in item.matches
        )
        matches = f'<ul class="matches" aria-label="matches">{rows}</ul>'
    hold = (
        f'<button type="button" class="reveal" aria-label="hold to reveal item {item.id}" '
        f'data-for="pic-{item.id}">Hold to reveal (R)</button>'
        if reveal
        else ""
    )
    if split_csrf is not None:
        hold += split_form(case, item, split_csrf)
    return (
        f'<figure class="item" data-item="{item.id}">'
        f'<img id="pic-{item.id}" class="pic" src="{base}/thumbnail" '
        f'data-src="{base}/thumbnail" data-reveal="{base}/thumbnail?reveal=1" '
        f'alt="{e(caption)} of item {item.id}, blurred">{hold}'
        f'<figcaption><span class="path">{e(item.root)} / {e(item.path)}</span> · '
        f"{e(item.media_type)} · {e(item.scan_status)} · {e(caption)}"
        f'<br><span class="reasons">{e("; ".join(item.reasons))}</span>{matches}{exif}'
        "</figcaption></figure>"
    )


def _votes(view: TargetView) -> str:
    current = [v for v in view.votes if v.superseded_by is None]
    if not current:
        return "<p>No vote yet.</p>"
    rows = "".join(
        f"<li>{e(v.user)}: "
        f"{'not relevant' if v.choice.not_relevant else 'category ' + e(v.choice.category)}"
        f"{' · ' + e(v.choice.note) if v.choice.note else ''}</li>"
        for v in current
    )
    return f'<ul class="votes" aria-label="current votes">{rows}</ul>'


def _form(
    case: str, view: TargetView, codes: dict[str, str], csrf: str, mine: Any, as_lead: bool
) -> str:
    target = str(view.target)
    action = f"{target_url(case, target)}/{'decision' if as_lead else 'vote'}"
    chosen = getattr(mine, "category", None)
    buttons = []
    for key, code in category_keys(list(codes)):
        pressed = "true" if chosen == code else "false"
        buttons.append(
            f'<button type="submit" name="category" value="{e(code)}" data-key="{e(key)}" '
            f'aria-pressed="{pressed}" aria-label="category {e(code)}: {e(codes[code])}">'
            f"<kbd>{e(key)}</kbd> {e(code)} <small>{e(codes[code])}</small></button>"
        )
    buttons.append(
        '<button type="submit" name="not_relevant" value="1" data-key="n" '
        'aria-label="not relevant"><kbd>n</kbd> not relevant</button>'
    )

    def checked(flag: str) -> str:
        return " checked" if mine is not None and getattr(mine, flag, False) else ""

    series = e(getattr(mine, "series", None))
    note = e(getattr(mine, "note", None))
    verb = "Decide as lead" if as_lead else "Your vote"
    return (
        f'<form method="post" action="{action}" class="decision" aria-label="{verb}">'
        f"<h2>{verb}</h2>"
        f'<input type="hidden" name="csrf_token" value="{e(csrf)}">'
        f'<div class="categories">{"".join(buttons)}</div>'
        f'<label>Series <input name="series" value="{series}"></label>'
        f'<label><input type="checkbox" name="victim_identified" value="1"'
        f"{checked('victim_identified')}> victim identified</label>"
        f'<label><input type="checkbox" name="offender_identified" value="1"'
        f"{checked('offender_identified')}> offender identified</label>"
        f'<label>Note <textarea name="note">{note}</textarea></label></form>'
    )


def target_page(
    case: CaseInfo,
    view: TargetView,
    items: Sequence[CaseItem],
    reasons: Sequence[str],
    codes: dict[str, str],
    *,
    user: str,
    csrf: str,
    mine: Any,
    as_lead: bool,
    neighbours: tuple[str | None, str | None],
    last: str | None,
    error: str | None = None,
    notice: str = "",
    extras: str = "",
) -> str:
    """``notice``: HTML shown first (the break prompt); ``extras``: HTML after the form (the
    second-look form, the decisions)."""
    uid = case.case_uid
    prev_t, next_t = neighbours
    links = [f'<a href="{case_url(uid)}">Back to the queue</a>']
    if prev_t:
        links.append(
            f'<a id="prev" href="{target_url(uid, prev_t)}" aria-label="previous (k)">previous</a>'
        )
    if next_t:
        links.append(
            f'<a id="next" href="{target_url(uid, next_t)}" aria-label="next (j)">next</a>'
        )
    problem = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    cluster = view.target.cluster is not None
    settled = view.state == "settled"
    splits = csrf if cluster and not settled and len(items) > 1 else None
    grid = "".join(_item_block(uid, i, reveal=True, split_csrf=splits) for i in items)
    why = f'<p class="why">Ranked here because: {e("; ".join(reasons))}</p>' if reasons else ""
    form = (
        "<p>This target is settled.</p>"
        if settled
        else _form(uid, view, codes, csrf, mine, as_lead)
    )
    body = (
        f'{notice}<p class="nav">{" · ".join(links)}</p>{_undo(uid, last)}{problem}'
        f'<p class="state">State: <strong>{e(view.state)}</strong> · '
        f"{len(view.item_ids)} item(s)</p>{why}"
        f'<div class="{"grid" if cluster else "single"}">{grid}</div>'
        f"{_votes(view)}{form}{extras}"
    )
    title = f"Cluster {view.target.cluster}" if cluster else f"Item {view.target.item}"
    return layout(f"{title} · {_case_name(case)}", body, user=user, csrf=csrf)
