"""The self-contained HTML report: inline CSS and SVG charts, no scripts, no external assets.

Its words follow the template's language (Russian or English, i18n.py); times are shown in the
portal's time zone and numbers in the language's style (formats.Display).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from connector.reports.analytics import AgingReport, FunnelReport, TimeInStageReport
from connector.reports.formats import Display, tz_name
from connector.reports.i18n import items_word, text
from connector.reports.svg import Bar, bar_chart

_CSS = """
body{font-family:"DejaVu Sans","Segoe UI",Arial,sans-serif;margin:24px auto;max-width:960px;color:#1f2933;
line-height:1.4;padding:0 12px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 6px;border-bottom:1px solid #cbd2d9}
h3{font-size:16px;margin:18px 0 6px}.meta{color:#52606d;font-size:13px}
.wide{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:8px 0 4px;width:100%}
th,td{border:1px solid #cbd2d9;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:normal;
word-break:normal;hyphens:manual}
th{background:#e4e7eb}td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.d{white-space:nowrap}
.empty{color:#52606d;font-style:italic}.legend span{display:inline-block;width:12px;height:12px;
margin:0 4px 0 12px;vertical-align:middle}
"""


def fmt_number(value: float | int | None, digits: int = 2, show: Display | None = None) -> str:
    """A number in the language's style (`109 000,5` in Russian), no trailing zeros; `—` for none."""
    if value is None:
        return "—"
    show = show or Display(lang="en")
    if isinstance(value, int) or float(value).is_integer():
        return show.number(int(value))
    return show.number(round(float(value), digits))


def fmt_percent(share: float | None, show: Display | None = None) -> str:
    """A share 0..1 as a percentage."""
    return "—" if share is None else f"{fmt_number(round(share * 100, 1), show=show)} %"


def _table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (),
    nowrap: Sequence[int] = (),
) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{escape(str(v))}</td>' if i in numeric
            else f'<td class="d">{escape(str(v))}</td>' if i in nowrap else f"<td>{escape(str(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    table = f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    return f'<div class="wide">{table}</div>'


def _sum_name(key: str, labels: dict[str, str]) -> tuple[str, str]:
    """A sums key `<money field> <currency>` as (field label, currency)."""
    code, _sep, currency = key.partition(" ")
    return labels.get(code, code), currency


def funnel_section(report: FunnelReport, show: Display) -> str:
    """Funnel bars (items per stage) and a table with sums and conversion, per funnel."""
    lang = show.lang
    parts = [f"<h2>{escape(text('funnel.heading', lang))}</h2>", _legend(lang)]
    first_money = report.money_fields[0] if report.money_fields else None
    if first_money:
        name = report.field_labels.get(first_money, first_money)
        parts.append(f'<p class="meta">{escape(text("funnel.caption", lang, name=name))}</p>')
    if not report.funnels:
        parts.append(f'<p class="empty">{escape(text("funnel.none", lang))}</p>')
    for funnel in report.funnels:
        total = f"{fmt_number(funnel.total, show=show)} {items_word(funnel.total, lang)}"
        parts.append(f"<h3>{escape(funnel.funnel_name)} — {total}</h3>")
        if funnel.total == 0 and not any(s.reached for s in funnel.stages):
            parts.append(f'<p class="empty">{escape(text("funnel.empty", lang))}</p>')
            continue
        bars = [
            Bar(s.stage_name, s.count, _count_caption(s.count, s.sums, first_money, show), s.semantics)
            for s in funnel.stages
        ]
        chart_title = text("funnel.chart", lang, funnel=funnel.funnel_name)
        parts.append(bar_chart(bars, title=chart_title, empty_text=text("no_data", lang)))
        # one column per money field and currency (none for a process without money fields)
        sum_keys = sorted({key for s in funnel.stages for key in s.sums})
        sum_heads = [text("col.sum", lang, name=name, currency=cur).rstrip(", ") for name, cur in
                     (_sum_name(k, report.field_labels) for k in sum_keys)]
        header = [text("col.stage", lang), text("col.count", lang), *sum_heads, text("col.reached", lang),
                  text("col.conversion", lang)]
        rows = [
            [s.stage_name, fmt_number(s.count, show=show),
             *(fmt_number(s.sums.get(k), show=show) for k in sum_keys),
             fmt_number(s.reached, show=show), fmt_percent(s.conversion, show)]
            for s in funnel.stages
        ]
        parts.append(_table(header, rows, numeric=range(1, len(header))))
    return "".join(parts)


def _count_caption(count: int, sums: dict[str, float], money_field: str | None, show: Display) -> str:
    """`4` or `4 · 158 000 ₽` (the first money field; one figure per currency)."""
    money = [
        show.money(total, key.partition(" ")[2]) or ""
        for key, total in sums.items() if key.partition(" ")[0] == money_field
    ]
    return " · ".join([fmt_number(count, show=show), *money])


def _legend(lang: str) -> str:
    swatches = "".join(
        f'<span style="background:{color}"></span>{escape(text("legend." + kind, lang))}'
        for kind, color in (("process", "#3b82c4"), ("success", "#2f9e44"), ("failure", "#c92a2a"))
    )
    return f'<p class="legend meta">{swatches}</p>'


def time_section(report: TimeInStageReport, show: Display) -> str:
    """Median (dark) and 90th percentile (light) time in stage per funnel, with a table."""
    lang = show.lang
    parts = [
        f"<h2>{escape(text('time.heading', lang))}</h2>",
        f'<p class="meta">{escape(text("time.caption", lang))}</p>',
    ]
    funnels: dict[str, list] = {}
    for row in report.stages:
        funnels.setdefault(row.funnel_name, []).append(row)
    if not funnels:
        parts.append(f'<p class="empty">{escape(text("time.none", lang))}</p>')
    for name, rows in funnels.items():
        parts.append(f"<h3>{escape(name)}</h3>")
        if not any(r.completed or r.current for r in rows):
            parts.append(f'<p class="empty">{escape(text("time.empty", lang))}</p>')
            continue
        unit = duration_unit([r.median_hours for r in rows] + [r.p90_hours for r in rows])
        now_unit = duration_unit([r.current_max_hours for r in rows])  # one unit per column
        final = {r.stage for r in rows if r.semantics != "process"}
        bars = [
            Bar(r.stage_name, r.median_hours or 0.0, _time_caption(r, unit, show), back_value=r.p90_hours)
            for r in rows if r.stage not in final  # time spent in a closing stage is not a delay
        ]
        if bars:
            chart_title = text("time.chart", lang, funnel=name)
            parts.append(bar_chart(bars, title=chart_title, empty_text=text("no_data", lang)))
        table_rows = [
            (r.stage_name, fmt_number(r.completed, show=show), fmt_duration(r.median_hours, unit, show),
             fmt_duration(r.p90_hours, unit, show), fmt_number(r.current, show=show),
             fmt_duration(r.current_max_hours, now_unit, show))
            for r in rows
        ]
        header = [text(k, lang) for k in
                  ("col.stage", "col.completed", "col.median", "col.p90", "col.current", "col.current_max")]
        parts.append(_table(header, table_rows, numeric=(1, 2, 3, 4, 5)))
    return "".join(parts)


def _time_caption(row: Any, unit: str, show: Display) -> str:
    if not row.completed:
        return text("time.no_stays", show.lang, n=row.current)
    median, p90 = fmt_duration(row.median_hours, unit, show), fmt_duration(row.p90_hours, unit, show)
    return text("time.bar", show.lang, median=median, p90=p90, n=row.completed)


_UNIT_HOURS = {"min": 1 / 60, "h": 1.0, "d": 24.0}


def duration_unit(hours: Sequence[float | None]) -> str:
    """One unit for a set of durations (so a chart and its table compare like with like)."""
    longest = max((h for h in hours if h is not None), default=0.0)
    return "min" if longest < 1 else "h" if longest < 48 else "d"


def fmt_duration(hours: float | None, unit: str, show: Display | None = None) -> str:
    """Hours in the given unit: `30 min`, `30.5 h`, `4.2 d` (`30,5 ч` in Russian)."""
    if hours is None:
        return "—"
    value = hours / _UNIT_HOURS[unit]
    digits = 0 if unit == "min" else 2 if value < 1 else 1
    lang = show.lang if show else "en"
    return f"{fmt_number(round(value, digits), show=show)} {text('unit.' + unit, lang)}"


def aging_section(report: AgingReport, show: Display) -> str:
    """Open items stuck longest in their current stage."""
    lang = show.lang
    parts = [f"<h2>{escape(text('aging.heading', lang))}</h2>"]
    if not report.items:
        parts.append(f'<p class="empty">{escape(text("aging.none", lang))}</p>')
        return "".join(parts)
    rows = [
        (i.title or "—", i.id if i.id is not None else text("aging.not_on_portal", lang), i.funnel_name,
         i.stage_name, show.when(i.since) or "—", fmt_number(i.days, show=show))
        for i in report.items
    ]
    header = [text("col.item", lang), text("col.id", lang), text("col.funnel", lang), text("col.stage", lang),
              text("col.since", lang, tz=tz_name(show.tz)), text("col.days", lang)]
    parts.append(_table(header, rows, numeric=(5,), nowrap=(4,)))
    return "".join(parts)


def render_page(
    title: str, generated_at: str, sections: Sequence[str], type_code: str = "", show: Display | None = None
) -> str:
    """The whole report page."""
    show = show or Display(lang="en")
    lang = show.lang
    process = f"{escape(text('process', lang))} <code>{escape(type_code)}</code>. " if type_code else ""
    when = show.when(generated_at) or generated_at
    generated = escape(text("generated", lang, when=when, tz=tz_name(show.tz)))
    return (
        f'<!DOCTYPE html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class=\"meta\">{process}{generated}</p>" + "".join(sections)
        + "</body></html>\n"
    )
