"""HTML of the workspace pages beside the queue: your settings and exposure, a case's
decisions (a lead revokes one there), its progress with charts, and the parts of the target
page for splitting, second looks and decisions. Every value escaped; no inline script or
style; every button labelled for screen readers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from hashwatch.review.cases import CaseInfo
from hashwatch.review.exposure import CareSettings, Exposure
from hashwatch.review.progress import STATES, CaseProgress
from hashwatch.review.second_look import Mark, SecondLook
from hashwatch.review.votes import Decision
from hashwatch.web.pages.render import case_url, e, layout, target_url

__all__ = [
    "break_notice",
    "case_links",
    "decisions_block",
    "decisions_page",
    "me_page",
    "progress_page",
    "second_look_form",
    "second_look_lane",
]

_LIMITS = (
    ("reveals_per_session", "Reveals in one sign-in session"),
    ("reveals_per_day", "Reveals in a day"),
    ("minutes_per_day", "Minutes of media in a day"),
    ("break_after_minutes", "Minutes of media without a 5-minute pause"),
)


def _csrf(csrf: str) -> str:
    return f'<input type="hidden" name="csrf_token" value="{e(csrf)}">'


def _when(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


def break_notice(exposure: Exposure) -> str:
    """The break prompt when a limit is reached (it prompts; it does not lock anyone out)."""
    if not exposure.break_due:
        return ""
    reasons = "; ".join(exposure.reasons)
    return (
        '<div class="break" role="alert" id="break-prompt"><strong>Time for a break.</strong> '
        f"{e(reasons)}. Your limits are in "
        '<a href="/review/me">your settings</a>.</div>'
    )


def me_page(
    settings: CareSettings,
    exposure: Exposure,
    *,
    user: str,
    csrf: str,
    saved: bool = False,
    error: str | None = None,
) -> str:
    problem = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    done = '<p class="saved" role="status">Your settings are saved.</p>' if saved else ""

    def box(name: str, label: str) -> str:
        on = " checked" if getattr(settings, name) else ""
        return (
            f'<label><input type="checkbox" name="{name}" value="1"{on}> {e(label)}</label>'
            f'<input type="hidden" name="{name}_shown" value="1">'
        )

    def number(name: str, label: str, low: int, high: int, optional: bool) -> str:
        value = getattr(settings, name)
        hint = " (empty: no limit)" if optional else ""
        need = "" if optional else " required"
        return (
            f'<label>{e(label)}{hint} <input type="number" name="{name}" min="{low}" '
            f'max="{high}" value="{e(value)}"{need}></label>'
        )

    limits = "".join(number(n, label, 1, 100_000, True) for n, label in _LIMITS)
    form = (
        '<form method="post" action="/review/me" class="settings" '
        'aria-label="your viewing aids and limits"><h2>Viewing aids</h2>'
        f"{_csrf(csrf)}"
        f"{box('blur', 'Blur pictures unless revealed')}"
        f"{number('blur_strength', 'Blur strength (1–100)', 1, 100, False)}"
        f"{box('greyscale', 'Show pictures in grey unless revealed')}"
        f"{number('view_seconds', 'Seconds one view counts for (1–600)', 1, 600, False)}"
        f"<h2>Break prompts</h2>{limits}"
        '<button type="submit" aria-label="save your settings">Save</button></form>'
    )
    limit_rows = "".join(
        f"<tr><th scope='row'>{e(label)}</th><td>{e(getattr(settings, n) or 'off')}</td></tr>"
        for n, label in _LIMITS
    )
    today = (
        f'<section aria-label="your exposure today"><h2>Today ({e(exposure.day)}, UTC)</h2>'
        f"{break_notice(exposure)}"
        '<table class="exposure"><tbody>'
        f"<tr><th scope='row'>Pictures shown</th><td>{exposure.views}</td></tr>"
        f"<tr><th scope='row'>Reveals</th><td>{exposure.reveals}</td></tr>"
        f"<tr><th scope='row'>Reveals this session</th>"
        f"<td>{exposure.reveals_this_session}</td></tr>"
        f"<tr><th scope='row'>Minutes of media</th><td>{exposure.minutes:g}</td></tr>"
        f"<tr><th scope='row'>Minutes since your last break</th>"
        f"<td>{exposure.minutes_since_break:g}</td></tr>"
        f"</tbody></table><h3>Limits</h3><table><tbody>{limit_rows}</tbody></table></section>"
    )
    return layout(
        "Your settings and exposure", f"{problem}{done}{today}{form}", user=user, csrf=csrf
    )


def _marks(marks: Sequence[Mark]) -> str:
    rows = "".join(
        f"<li>{e(m.marked_by)}{': ' + e(m.note) if m.note else ''} "
        f'<span class="muted">({e(_when(m.marked_at))})</span></li>'
        for m in marks
    )
    return f'<ul class="marks" aria-label="second-look marks">{rows}</ul>' if rows else ""


def second_look_form(
    case: str, target: str, marks: Sequence[Mark], *, user: str, csrf: str, is_lead: bool
) -> str:
    action = f"{target_url(case, target)}/second-look"
    mine = next((m for m in marks if m.marked_by == user), None)
    note = e(mine.note) if mine else ""
    verb = "Change your note" if mine else "Needs a second look"
    clear = ""
    if mine is not None or (is_lead and marks):
        what = "every mark" if is_lead else "your mark"
        clear = (
            f'<button type="submit" name="action" value="clear" '
            f'aria-label="clear {what} for a second look">Clear {what}</button>'
        )
    head = "<p>Marked for a second look by:</p>" if marks else ""
    return (
        f'<section class="second-look" aria-label="second look"><h2>Second look</h2>'
        f"{head}{_marks(marks)}"
        f'<form method="post" action="{e(action)}">{_csrf(csrf)}'
        f'<label>Note for the second look <input name="note" value="{note}"></label> '
        f'<button type="submit" name="action" value="mark" data-key="f" '
        f'aria-label="mark this target: needs a second look">'
        f"<kbd>f</kbd> {e(verb)}</button> {clear}</form></section>"
    )


def second_look_lane(case: str, lane: Sequence[SecondLook]) -> str:
    if not lane:
        return ""
    items = "".join(
        f'<li data-target="{e(str(s.target))}"><a class="second-look-link" '
        f'href="{target_url(case, str(s.target))}">{e(str(s.target).replace(":", " "))}</a> '
        f'<span class="state">{e(s.state)}</span> · {len(s.item_ids)} item(s){_marks(s.marks)}'
        "</li>"
        for s in lane
    )
    return (
        '<section class="lane" aria-label="needs a second look"><h2>Needs a second look</h2>'
        '<p class="note">Targets a reviewer marked to look at again, in the scan\'s order.</p>'
        f"<ol>{items}</ol></section>"
    )


def _choice(d: Decision) -> str:
    if d.choice.not_relevant:
        return "not relevant"
    return f"category {e(d.choice.category)}"


def _revoke_form(case: str, d: Decision, csrf: str, back: str) -> str:
    action = f"{case_url(case)}/decisions/{d.id}/revoke"
    return (
        f'<form method="post" action="{e(action)}" class="revoke" '
        f'aria-label="revoke decision {d.id}">{_csrf(csrf)}'
        f'<input type="hidden" name="back" value="{e(back)}">'
        f'<label>Reason <input name="reason" required maxlength="10000"></label> '
        f'<button type="submit" aria-label="revoke decision {d.id} and its list entries">'
        "Revoke</button></form>"
    )


def _decision_row(case: str, d: Decision, *, csrf: str, is_lead: bool, back: str) -> str:
    target = str(d.target)
    voters = ", ".join(
        f"{v.user} ({'not relevant' if v.choice.not_relevant else v.choice.category})"
        for v in d.votes
    )
    if d.entry_ids:
        listed = f"{len(d.entry_ids)} entries in {e(d.list_name)}"
    elif d.list_error:
        listed = f'<span class="error">list step pending: {e(d.list_error)}</span>'
    else:
        listed = "no entries"
    if d.revoked_at is not None:
        state = (
            f'<span class="revoked">revoked by {e(d.revoked_by)} on {e(_when(d.revoked_at))}: '
            f"{e(d.revoked_reason)}</span>"
        )
    elif is_lead:
        state = "standing" + _revoke_form(case, d, csrf, back)
    else:
        state = "standing"
    cls = "decision revoked" if d.revoked_at is not None else "decision"
    return (
        f'<tr class="{cls}" data-decision="{d.id}"><td>{d.id}</td>'
        f'<td><a href="{target_url(case, target)}">{e(target)}</a></td>'
        f"<td>{_choice(d)}{' · ' + e(d.choice.series) if d.choice.series else ''}</td>"
        f"<td>{e(d.how)} by {e(d.decided_by)}, {e(_when(d.decided_at))}</td>"
        f"<td>{e(voters) or 'none'}</td><td>{listed}</td><td>{state}</td></tr>"
    )


def decisions_block(
    case: str, decisions: Sequence[Decision], *, csrf: str, is_lead: bool, back: str
) -> str:
    if not decisions:
        return "<p>No decision yet.</p>"
    rows = "".join(_decision_row(case, d, csrf=csrf, is_lead=is_lead, back=back) for d in decisions)
    head = "".join(
        f'<th scope="col">{h}</th>'
        for h in ("#", "target", "decision", "how", "votes", "list", "state")
    )
    return f'<table class="decisions"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def decisions_page(
    case: CaseInfo,
    decisions: Sequence[Decision],
    *,
    user: str,
    csrf: str,
    is_lead: bool,
    error: str | None = None,
) -> str:
    uid = case.case_uid
    problem = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    note = (
        '<p class="note">Revoking a decision revokes its list entries; the target goes back '
        "to the lead's queue.</p>"
        if is_lead
        else ""
    )
    body = (
        f'<p><a href="{case_url(uid)}">Back to the case</a></p>{problem}{note}'
        f"{decisions_block(uid, decisions, csrf=csrf, is_lead=is_lead, back='decisions')}"
    )
    return layout(f"Decisions · {case.case_number or uid}", body, user=user, csrf=csrf)


def progress_page(
    done: CaseProgress, charts: Mapping[str, str], *, user: str, csrf: str, is_lead: bool
) -> str:
    s = done.status
    uid = s.case.case_uid
    counts = "".join(
        f"<tr><th scope='row'>{k}</th><td>{s.clusters_by_review.get(k, 0)}</td>"
        f"<td>{s.items_by_review.get(k, 0)}</td></tr>"
        for k in STATES
    )
    facts = (
        '<table class="progress"><thead><tr><th scope="col">state</th>'
        '<th scope="col">clusters</th><th scope="col">items</th></tr></thead>'
        f"<tbody>{counts}</tbody></table>"
        f"<p>Needs a second look: {done.second_look} · decisions waiting for their list "
        f"entries: {s.list_steps_pending}</p>"
    )
    people = []
    for r in done.reviewers:
        days = "".join(
            f"<tr><td>{d.day.isoformat()}</td><td>{d.votes}</td><td>{d.views}</td>"
            f"<td>{d.reveals}</td><td>{d.minutes:g}</td></tr>"
            for d in r.days
        )
        table = (
            '<table class="days"><thead><tr><th scope="col">day (UTC)</th>'
            '<th scope="col">votes</th><th scope="col">views</th><th scope="col">reveals</th>'
            f'<th scope="col">minutes</th></tr></thead><tbody>{days}</tbody></table>'
        )
        people.append(
            f'<section class="reviewer" aria-label="reviewer {e(r.reviewer)}">'
            f"<h3>{e(r.reviewer)}</h3><p>{r.votes} vote(s) cast, "
            f"{r.targets_voted} target(s) with a current vote</p>"
            f'<div class="charts">{charts.get("reviewer:" + r.reviewer, "")}</div>{table}'
            "</section>"
        )
    who = "Every reviewer" if is_lead else "You"
    body = (
        f'<p><a href="{case_url(uid)}">Back to the case</a> · '
        f'<a href="{case_url(uid)}/decisions">Decisions</a></p>'
        f'<section aria-label="case progress"><h2>The case</h2>'
        f'<div class="charts">{charts["clusters"]}{charts["items"]}</div>{facts}</section>'
        f"<section><h2>{who}: votes and exposure per day</h2>{''.join(people)}</section>"
    )
    return layout(f"Progress · {s.case.case_number or uid}", body, user=user, csrf=csrf)


def case_links(case: str) -> str:
    base = case_url(case)
    return (
        f' · <a href="{base}/progress">Progress</a>'
        f' · <a href="{base}/decisions">Decisions</a>'
        f' · <a href="/review/me">Your settings and exposure</a>'
    )
