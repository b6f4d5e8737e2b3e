"""``report.html`` for a financial analyst: alerts ranked, each with its rules in words, a
timeline of its payments and the sender/receiver graph around it, as inline SVG.

Self-contained: no script, no font, no image is fetched; the page opens without a network.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from pathlib import Path

from hashwatch.payments.alerts import Payment
from hashwatch.payments.model import Alert, ScreenResult

__all__ = ["section", "write_report"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#1b1b1b}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}section{margin:2rem 0;padding-top:1rem;border-top:2px solid #444}
.muted{color:#555}svg{background:#fafafa;border:1px solid #ddd;margin:.5rem 1rem .5rem 0}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _timeline(payments: list[Payment], width: int = 560, height: int = 160) -> str:
    """Amount in EUR (y) over time (x), one dot per payment."""
    if not payments:
        return ""
    t0 = min(p.epoch_s for p in payments)
    t1 = max(p.epoch_s for p in payments)
    top = max(p.amount_eur for p in payments) or 1.0
    span = (t1 - t0) or 1.0
    pad = 30
    dots = "".join(
        f'<circle cx="{pad + (p.epoch_s - t0) / span * (width - 2 * pad):.1f}" '
        f'cy="{height - pad - p.amount_eur / top * (height - 2 * pad):.1f}" r="2.5" '
        f'fill="#2458a6"><title>{_e(p.tx_id)} EUR {p.amount_eur:.2f}</title></circle>'
        for p in payments[:2000]
    )
    first = datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%d")
    last = datetime.fromtimestamp(t1, UTC).strftime("%Y-%m-%d")
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="payments over time">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="#888"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>'
        f'<text x="{pad}" y="{height - 8}" font-size="10">{first}</text>'
        f'<text x="{width - pad}" y="{height - 8}" font-size="10" text-anchor="end">{last}</text>'
        f'<text x="2" y="{pad - 8}" font-size="10">EUR {top:.0f}</text>{dots}</svg>'
    )


def _graph(alert: Alert, flagged: frozenset[str]) -> str:
    """The account in the centre, its counterparties on a circle (sorted, so deterministic):
    those the rules fired with first, then the others it paid or was paid by."""
    size, radius = 320, 120
    centre = size / 2
    named = sorted({h.counterparty for h in alert.rules if h.counterparty in alert.counterparties})
    others = (named + [c for c in alert.counterparties if c not in named])[:40]
    parts = []
    for i, other in enumerate(others):
        angle = 2 * math.pi * i / max(len(others), 1)
        x = centre + radius * math.cos(angle)
        y = centre + radius * math.sin(angle)
        colour = "#b3261e" if other in flagged else "#2458a6"
        parts.append(
            f'<line x1="{centre}" y1="{centre}" x2="{x:.1f}" y2="{y:.1f}" stroke="#aaa"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colour}"><title>{_e(other)}'
            f"</title></circle>"
            f'<text x="{x:.1f}" y="{y - 9:.1f}" font-size="8" text-anchor="middle">'
            f"{_e(other)}</text>"
        )
    return (
        f'<svg width="{size}" height="{size}" role="img" aria-label="counterparties">'
        + "".join(parts)
        + f'<circle cx="{centre}" cy="{centre}" r="9" fill="#e8a317"/>'
        f'<text x="{centre}" y="{centre + 22}" font-size="9" text-anchor="middle">'
        f"{_e(alert.account)}</text></svg>"
    )


def section(number: int, alert: Alert, payments: list[Payment], flagged: frozenset[str]) -> str:
    """One alert's part of the report: its rules in words, its timeline, its counterparties."""
    hits = "".join(
        f"<tr><td>{_e(h.rule)}</td><td>{h.weight:g}</td><td>{_e(h.detail)}</td>"
        f"<td>{_e(h.counterparty or '')}</td><td>{len(h.tx_ids)}</td></tr>"
        for h in alert.rules[:100]
    )
    return (
        f'<section id="a{number}"><h2>{number}. {_e(alert.account)} ({alert.role}), score '
        f"{alert.score:g}</h2><p>{_e(alert.explanation)}</p>"
        f"<table><tr><th>rule</th><th>weight</th><th>what it saw</th><th>with</th>"
        f"<th>payments</th></tr>{hits}</table>"
        f"{_timeline(payments)}{_graph(alert, flagged)}"
        f'<p class="muted">{len(alert.transactions)} payments named by the rules, '
        f"{len(alert.counterparties)} counterparties.</p></section>\n"
    )


def write_report(path: Path, result: ScreenResult, sections: Path) -> None:
    """The page: a ranked table of the alerts, then the alerts' sections as written to
    ``sections`` while the alerts were built (one alert at a time, so memory stays bounded)."""
    rows = "".join(
        f'<tr><td>{i}</td><td><a href="#a{i}">{_e(a.account)}</a></td><td>{a.role}</td>'
        f"<td>{a.score:g}</td><td>{_e(', '.join(a.rule_names))}</td></tr>"
        for i, a in enumerate(result.alerts, start=1)
    )
    bad = "".join(
        f"<li>{_e(Path(b.file).name)} line {b.line}: {_e(b.reason)}</li>"
        for b in result.bad_row_samples
    )
    head = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Payment screening</title><style>{_STYLE}</style></head><body>"
        "<h1>Payment screening</h1>"
        f'<p class="muted">Rules version {_e(result.config_version)} (sha256 '
        f"{_e(result.config_sha256[:16])}...). {result.rows} payments, {result.accounts} "
        f"accounts, {result.relations} relations, {result.bad_rows} bad rows. An alert is a lead "
        "for a person to examine, not a finding.</p>"
        f"<h2>Alerts ({len(result.alerts)})</h2><table><tr><th>#</th><th>account</th>"
        f"<th>role</th><th>score</th><th>rules</th></tr>{rows}</table>\n"
    )
    tail = (
        f"<h2>Bad rows (first {len(result.bad_row_samples)})</h2><ul>{bad}</ul>" if bad else ""
    ) + "</body></html>\n"
    with path.open("w", encoding="utf-8") as out, sections.open(encoding="utf-8") as parts:
        out.write(head)
        for chunk in iter(lambda: parts.read(1 << 20), ""):
            out.write(chunk)
        out.write(tail)
