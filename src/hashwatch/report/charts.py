"""The look of the self-contained HTML report: inline SVG charts, escaping, the stylesheet.

The report must open from disk with no network and no script, so charts are plain SVG
generated here (no JavaScript chart library), each with a text alternative and the numbers
written beside the bars: a chart is read without colour and prints in black and white.

:func:`esc` is the one way text reaches the report. Evidence names are attacker-chosen (an
archive member may be called ``<script>…`` or hold terminal escapes and right-to-left
overrides that disguise ``gpj.exe`` as ``exe.jpg``), so besides HTML escaping it shows every
control, bidirectional-override and undecodable character as a visible code.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

__all__ = ["PALETTE", "STYLESHEET", "bar_chart", "esc", "path_html", "short", "table"]

# Colour-blind-safe hues (Okabe-Ito), in a fixed order so a status keeps its colour.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#999999")

# C0/C1 controls, zero-width and bidirectional controls, BOM, lone surrogates (bytes that
# were not UTF-8, kept by ``surrogateescape``).
_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)


def _code(ch: str) -> str:
    point = ord(ch)
    if 0xDC80 <= point <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{point - 0xDC00:02x}"
    return f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}"


def esc(value: object) -> str:
    """HTML-escaped text; hidden characters shown as ``\\x1b``-style codes in a marked span."""
    text = "" if value is None else str(value)
    out: list[str] = []
    pos = 0
    for m in _HIDDEN.finditer(text):
        out.append(html.escape(text[pos : m.start()], quote=True))
        out.append(f'<span class="ctl" title="hidden character">{_code(m.group())}</span>')
        pos = m.end()
    out.append(html.escape(text[pos:], quote=True))
    return "".join(out)


def _plain(value: object) -> str:
    """Escaped text for an attribute or SVG text: hidden characters as codes, no markup."""
    text = "" if value is None else str(value)
    return html.escape(_HIDDEN.sub(lambda m: _code(m.group()), text), quote=True)


def short(value: object, limit: int = 60) -> str:
    """``value`` cut to ``limit`` characters, keeping the end (file names live there)."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def path_html(path: object) -> str:
    """A path, escaped, in the report's path style."""
    return f'<span class="path">{esc(path)}</span>'


def table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table; cells are HTML already (the callers escape)."""
    th = "".join(f'<th scope="col">{h}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def bar_chart(
    items: Sequence[tuple[str, int]],
    *,
    title: str,
    chart_id: str,
    colors: Sequence[str] | None = None,
    width: int = 460,
    max_bars: int = 12,
) -> str:
    """A horizontal bar chart as inline SVG: one labelled bar per item, the value beside it.

    Items beyond ``max_bars`` are summed into one "other" bar so the chart stays readable.
    Labels longer than the label column are shortened; the full text is the bar's tooltip.
    """
    palette = colors or PALETTE[:1]
    coloured = [(label, count, palette[i % len(palette)]) for i, (label, count) in enumerate(items)]
    rows = [row for row in coloured if row[1] > 0]  # a colour stays with its item
    if len(rows) > max_bars:
        rest = sum(c for _, c, _ in rows[max_bars - 1 :])
        rows = [*rows[: max_bars - 1], (f"{len(rows) - max_bars + 1} more", rest, "#999999")]
    head = f'<figure class="chart"><figcaption id="{chart_id}-t">{esc(title)}</figcaption>'
    if not rows:
        return head + '<p class="muted">Nothing to show.</p></figure>'
    label_w, bar_h, gap, value_w = 176, 20, 8, 60
    plot_w = width - label_w - value_w
    top = max(c for _, c, _ in rows)
    height = len(rows) * (bar_h + gap) + gap
    desc = "; ".join(f"{label}: {count}" for label, count, _ in rows)
    parts = [
        head,
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d">'
        f'<desc id="{chart_id}-d">{_plain(desc)}</desc>',
    ]
    for i, (label, count, colour) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = max(2, round(plot_w * count / top))
        text = label if len(label) <= 24 else label[:23] + "…"
        parts.append(
            f"<g><title>{_plain(label)}: {count}</title>"
            f'<text x="{label_w - 8}" y="{y + bar_h * 0.72:.1f}" text-anchor="end" '
            f'class="lbl">{_plain(text)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" rx="3" '
            f'fill="{_plain(colour)}"/>'
            f'<text x="{label_w + w + 6}" y="{y + bar_h * 0.72:.1f}" class="val">'
            f"{count:,}</text></g>"
        )
    parts.append("</svg></figure>")
    return "".join(parts)


# Thumbnails: blurred and grey by default (``img.blur``); a visually hidden checkbox before
# the frame reveals its own image only; print always blurs. No image exceeds a 160 px box.
STYLESHEET = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--accent:#0b5cad;
--pad:max(24px,calc((100% - 1180px)/2 + 24px))}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink)}
main,footer{max-width:1180px;margin:0 auto;padding:0 24px}
.top{background:var(--bg);border-bottom:1px solid var(--line);padding:18px var(--pad) 10px}
.kicker{margin:0;color:var(--muted);text-transform:uppercase;letter-spacing:.08em;font-size:12px}
h1{margin:0 0 8px;font-size:26px}h2{font-size:21px;margin:30px 0 8px;
border-bottom:2px solid var(--line);padding-bottom:4px}h3{font-size:16px;margin:18px 0 6px}
.facts{display:flex;flex-wrap:wrap;gap:6px 32px;margin:0 0 8px}
.facts dt{font-size:12px;color:var(--muted)}.facts dd{margin:0;font-weight:600}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);z-index:2}
nav ul{display:flex;flex-wrap:wrap;gap:4px 20px;list-style:none;margin:0;padding:8px var(--pad)}
nav a{color:var(--accent);text-decoration:none;font-weight:600}
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:14px}
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid var(--line)}
th{background:var(--bg);font-weight:600}.top th{background:#eaeef2}
table.counts,table.leads{width:auto;min-width:220px}
.counts td:last-child,.counts th:last-child{text-align:right}
.path{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;
word-break:break-all}code{font-size:12px;word-break:break-all}.settings{margin:4px 0}
.ctl{background:#fff3bf;color:#7a4b00;border-radius:2px;padding:0 2px;font-family:monospace}
.lead-note{background:#fff8e6;border-left:4px solid #e69f00;padding:8px 12px;margin:8px 0}
.warning{background:#fdecea;border-left:4px solid #d55e00;padding:8px 12px;margin:8px 0}
.statuses{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:6px 18px}
.statuses dt{font-weight:700}.statuses dd{margin:0 0 0 18px;color:var(--muted)}
.dot{display:inline-block;width:11px;height:11px;border-radius:50%;margin-right:7px}
.summary-grid{display:grid;grid-template-columns:230px 1fr;gap:18px;align-items:start}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}
.chart{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px}
.chart figcaption{font-weight:600;font-size:14px}.chart svg{max-width:100%;height:auto}
.chart .lbl{font-size:12px;fill:var(--ink)}.chart .val{font-size:12px;fill:var(--muted)}
.muted,.count{color:var(--muted);font-weight:400}.count{font-size:14px}
.explain{color:var(--muted);margin-top:0}
.cluster{border:1px solid var(--line);border-radius:8px;padding:2px 16px 10px;margin:14px 0}
.pill{background:#e7f1fb;color:#0b4f8a;border-radius:10px;padding:1px 9px;font-size:13px}
.reasons{margin:4px 0;padding-left:20px}.near{color:#8a3b00;margin:4px 0}
.cluster-facts{display:grid;grid-template-columns:minmax(280px,auto) 1fr;gap:4px 24px}
.thumbs{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.thumb{margin:0;width:160px;display:grid;grid-template-columns:auto 1fr;gap:4px 6px;
align-items:center}.frame{grid-column:1/3}
.frame{position:relative;width:160px;height:160px;overflow:hidden;background:var(--bg);
border:1px solid var(--line);border-radius:4px;display:flex;align-items:center;
justify-content:center;color:var(--muted);font-size:12px}
.frame img{max-width:160px;max-height:160px;object-fit:contain}
.badge{position:absolute;top:4px;left:4px;z-index:1;background:var(--accent);color:#fff;
font-size:11px;border-radius:3px;padding:0 5px}
img.blur{filter:blur(10px) grayscale(1)}.reveal:checked~.frame img.blur{filter:none}
.reveal{position:absolute;opacity:0;width:1px;height:1px}
.thumb label{align-self:flex-start;cursor:pointer;font-size:12px;padding:1px 10px;
border:1px solid #8c959f;border-radius:4px;background:#fff}
.reveal:focus-visible~label{outline:2px solid var(--accent);outline-offset:1px}
.thumb .hide,.reveal:checked~label .show{display:none}.reveal:checked~label .hide{display:inline}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.thumb figcaption{font-size:12px;color:var(--muted);overflow:hidden;text-overflow:ellipsis;
white-space:nowrap}
table.known{table-layout:fixed}.known th:nth-child(1){width:112px}
.known th:nth-child(3){width:90px}.known th:nth-child(4){width:240px}
.known th:nth-child(5){width:150px}.known th:nth-child(6){width:110px}
table.known .thumb{width:96px;grid-template-columns:auto}table.known .frame{width:96px;height:96px}
table.known .frame img{max-width:96px;max-height:96px}table.known figcaption{display:none}
.paths{margin:4px 0;padding-left:28px}.more{color:var(--muted)}
.flag{color:#8a3b00}details summary{cursor:pointer;color:var(--accent)}
footer{color:var(--muted);font-size:13px;border-top:1px solid var(--line);margin-top:30px;
padding-top:10px;padding-bottom:30px}
@media (max-width:800px){.summary-grid,.cluster-facts{grid-template-columns:1fr}}
@media print{nav,.thumb label{display:none}img.blur,.reveal:checked~.frame img.blur
{filter:blur(10px) grayscale(1)!important}.cluster,tr,.chart{break-inside:avoid}
body{font-size:10pt}.top{background:none}a{color:inherit;text-decoration:none}}
"""
