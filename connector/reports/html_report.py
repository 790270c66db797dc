"""The self-contained HTML report: inline CSS and SVG charts, no scripts, no external assets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from connector.reports.analytics import AgingReport, FunnelReport, TimeInStageReport
from connector.reports.svg import Bar, bar_chart

_CSS = """
body{font-family:"DejaVu Sans","Segoe UI",Arial,sans-serif;margin:24px auto;max-width:960px;color:#1f2933;
line-height:1.4}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 6px;border-bottom:1px solid #cbd2d9}
h3{font-size:16px;margin:18px 0 6px}.meta{color:#52606d;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 4px;width:100%}
th,td{border:1px solid #cbd2d9;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#e4e7eb;overflow-wrap:normal;hyphens:none}td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.empty{color:#52606d;font-style:italic}.legend span{display:inline-block;width:12px;height:12px;
margin:0 4px 0 12px;vertical-align:middle}
"""


def fmt_number(value: float | int | None, digits: int = 2) -> str:
    """A number with thin-space thousands separators (Russian style), no trailing zeros."""
    if value is None:
        return "—"
    if isinstance(value, int) or float(value).is_integer():
        text = f"{int(value):,}"
    else:
        text = f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    return text.replace(",", "\u202f")


def fmt_hours(hours: float | None) -> str:
    """Hours as a readable duration: minutes, hours or days."""
    if hours is None:
        return "—"
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{fmt_number(round(hours, 1))} h"
    return f"{fmt_number(round(hours / 24, 1))} d"


def fmt_percent(share: float | None) -> str:
    """A share 0..1 as a percentage."""
    return "—" if share is None else f"{fmt_number(round(share * 100, 1))} %"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{escape(str(v))}</td>' if i in numeric else f"<td>{escape(str(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _sum_name(key: str, labels: dict[str, str]) -> tuple[str, str]:
    """A sums key `<money field> <currency>` as (field label, currency)."""
    code, _sep, currency = key.partition(" ")
    return labels.get(code, code), currency


def funnel_section(report: FunnelReport) -> str:
    """Funnel bars (items per stage) and a table with sums and conversion, per funnel."""
    parts = ["<h2>Funnel: items per stage</h2>", _legend()]
    first_money = report.money_fields[0] if report.money_fields else None
    if first_money:
        name = report.field_labels.get(first_money, first_money)
        parts.append(f'<p class="meta">Next to each bar: items now · sum of «{escape(name)}».</p>')
    if not report.funnels:
        parts.append('<p class="empty">No funnels and no items yet.</p>')
    for funnel in report.funnels:
        noun = "item" if funnel.total == 1 else "items"
        parts.append(f"<h3>{escape(funnel.funnel_name)} — {fmt_number(funnel.total)} {noun}</h3>")
        if funnel.total == 0 and not any(s.reached for s in funnel.stages):
            parts.append('<p class="empty">No items in this funnel yet.</p>')
            continue
        bars = [
            Bar(s.stage_name, s.count, _count_caption(s.count, s.sums, first_money), s.semantics)
            for s in funnel.stages
        ]
        parts.append(bar_chart(bars, title=f"{funnel.funnel_name}: items per stage"))
        # one column per money field and currency (none for a process without money fields)
        sum_keys = sorted({key for s in funnel.stages for key in s.sums})
        sum_heads = [f"Σ {name}, {cur}".rstrip(", ") for name, cur in
                     (_sum_name(k, report.field_labels) for k in sum_keys)]
        header = ["Stage", "Items now", *sum_heads, "Ever reached", "Went on further"]
        rows = [
            [s.stage_name, fmt_number(s.count), *(fmt_number(s.sums.get(k)) for k in sum_keys),
             fmt_number(s.reached), fmt_percent(s.conversion)]
            for s in funnel.stages
        ]
        parts.append(_table(header, rows, numeric=range(1, len(header))))
    return "".join(parts)


def _count_caption(count: int, sums: dict[str, float], money_field: str | None) -> str:
    """`4` or `4 · 158 000 RUB` (the first money field; one figure per currency)."""
    money = [
        f"{fmt_number(total)} {key.partition(' ')[2]}".rstrip()
        for key, total in sums.items() if key.partition(" ")[0] == money_field
    ]
    return " · ".join([fmt_number(count), *money])


def _legend() -> str:
    return (
        '<p class="legend meta"><span style="background:#3b82c4"></span>in progress'
        '<span style="background:#2f9e44"></span>success<span style="background:#c92a2a"></span>failure</p>'
    )


def time_section(report: TimeInStageReport) -> str:
    """Median (dark) and 90th percentile (light) time in stage per funnel, with a table."""
    parts = [
        "<h2>Time in stage</h2>",
        '<p class="meta">Dark bar: median of completed stays; light bar: 90th percentile. '
        "Computed from the locally recorded stage history.</p>",
    ]
    funnels: dict[str, list] = {}
    for row in report.stages:
        funnels.setdefault(row.funnel_name, []).append(row)
    if not funnels:
        parts.append('<p class="empty">No stages and no stage history yet.</p>')
    for name, rows in funnels.items():
        parts.append(f"<h3>{escape(name)}</h3>")
        if not any(r.completed or r.current for r in rows):
            parts.append('<p class="empty">No items have been in this funnel yet.</p>')
            continue
        unit = duration_unit([r.median_hours for r in rows] + [r.p90_hours for r in rows])
        now_unit = duration_unit([r.current_max_hours for r in rows])  # one unit per column
        final = {r.stage for r in rows if r.semantics != "process"}
        bars = [
            Bar(r.stage_name, r.median_hours or 0.0, _time_caption(r, unit), back_value=r.p90_hours)
            for r in rows if r.stage not in final  # time spent in a closing stage is not a delay
        ]
        if bars:
            parts.append(bar_chart(bars, title=f"{name}: time in stage"))
        table_rows = [
            (r.stage_name, fmt_number(r.completed), fmt_duration(r.median_hours, unit),
             fmt_duration(r.p90_hours, unit), fmt_number(r.current),
             fmt_duration(r.current_max_hours, now_unit))
            for r in rows
        ]
        header = ("Stage", "Completed stays", "Median", "90th percentile", "Here now", "Longest now")
        parts.append(_table(header, table_rows, numeric=(1, 2, 3, 4, 5)))
    return "".join(parts)


def _time_caption(row: Any, unit: str) -> str:
    if not row.completed:
        return f"no completed stays · {row.current} here now"
    median, p90 = fmt_duration(row.median_hours, unit), fmt_duration(row.p90_hours, unit)
    return f"median {median} · p90 {p90} · n={row.completed}"


_UNIT_HOURS = {"min": 1 / 60, "h": 1.0, "d": 24.0}


def duration_unit(hours: Sequence[float | None]) -> str:
    """One unit for a set of durations (so a chart and its table compare like with like)."""
    longest = max((h for h in hours if h is not None), default=0.0)
    return "min" if longest < 1 else "h" if longest < 48 else "d"


def fmt_duration(hours: float | None, unit: str) -> str:
    """Hours in the given unit: `30 min`, `30.5 h`, `4.2 d`."""
    if hours is None:
        return "—"
    value = hours / _UNIT_HOURS[unit]
    digits = 0 if unit == "min" else 2 if value < 1 else 1
    return f"{fmt_number(round(value, digits))} {unit}"


def aging_section(report: AgingReport) -> str:
    """Open items stuck longest in their current stage."""
    parts = ["<h2>Stuck longest (open items)</h2>"]
    if not report.items:
        parts.append('<p class="empty">No open items.</p>')
        return "".join(parts)
    rows = [
        (i.title or "—", i.id if i.id is not None else "not on the portal yet", i.funnel_name, i.stage_name,
         (i.since or "—").replace("T", " ").removesuffix("Z"), fmt_number(i.days))
        for i in report.items
    ]
    header = ("Item", "Id", "Funnel", "Stage", "In stage since (UTC)", "Days")
    parts.append(_table(header, rows, numeric=(5,)))
    return "".join(parts)


def render_page(title: str, generated_at: str, sections: Sequence[str], type_code: str = "") -> str:
    """The whole report page."""
    process = f"Process <code>{escape(type_code)}</code>. " if type_code else ""
    when = generated_at.replace("T", " ").removesuffix("Z") + " UTC"
    return (
        '<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class=\"meta\">{process}Generated {escape(when)} by b24sync "
        "from the local store.</p>" + "".join(sections) + "</body></html>\n"
    )
