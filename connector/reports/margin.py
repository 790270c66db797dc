"""`b24sync report margin`: per deal, the deal amount against the production cost of its orders, and
totals per deal stage. Reads the process table (its `parent_deal` and money cost column) and the
deals that sync copied into `_deals` (sync/rules.py `pull_linked`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from connector.reports import html_report
from connector.reports.catalog import names
from connector.reports.errors import ReportError
from connector.reports.export import check_format
from connector.reports.readonly import open_store, require_process
from connector.reports.report import ReportResult, _emit
from connector.reports.writers import WriteOptions, plain_columns, write_csv, write_tables
from connector.store.reader import StoreReader
from connector.times import utc_now_text

FORMATS = ("html", "csv", "xlsx")
DEAL_HEADER = [
    "deal_id",
    "title",
    "funnel",
    "stage",
    "stage_name",
    "amount",
    "currency",
    "orders",
    "production_cost",
    "margin",
    "margin_percent",
]
STAGE_HEADER = [
    "funnel",
    "stage",
    "stage_name",
    "deals",
    "amount",
    "production_cost",
    "margin",
    "margin_percent",
]


class DealMargin(BaseModel):
    deal_id: int
    title: str | None
    funnel: str | None
    stage: str | None
    stage_name: str | None
    amount: float
    currency: str | None
    orders: int
    production_cost: float
    margin: float
    margin_percent: float | None


class StageTotal(BaseModel):
    funnel: str | None
    stage: str | None
    stage_name: str | None
    deals: int
    amount: float
    production_cost: float
    margin: float
    margin_percent: float | None


class MarginReport(BaseModel):
    type_code: str
    cost_field: str
    generated_at: str
    deals: list[DealMargin]
    stages: list[StageTotal]


def _percent(margin: float, amount: float) -> float | None:
    return round(margin / amount * 100, 1) if amount else None


def margin_report(store: StoreReader, type_code: str, cost_field: str = "cost") -> MarginReport:
    """Compute the report from a store opened for reading."""
    require_process(store, type_code)
    cols = set(store.columns(type_code))
    if "parent_deal" not in cols:
        raise ReportError(f'process {type_code!r} has no parent deal (relations.parents must list "deal")')
    if cost_field not in cols:
        money = sorted(c[: -len("_currency")] for c in cols if c.endswith("_currency"))
        raise ReportError(
            f"process {type_code!r} has no field {cost_field!r}; money fields: {', '.join(money) or 'none'}"
        )
    rows = store.deal_costs(type_code, cost_field)
    if rows is None:
        raise ReportError("the store has no deals yet: run `b24sync sync` with this process first")
    deals = [
        DealMargin(
            deal_id=r.id,
            title=r.title,
            funnel=r.funnel,
            stage=r.stage,
            stage_name=r.stage_label,
            amount=r.amount,
            currency=r.currency,
            orders=r.items,
            production_cost=r.cost,
            margin=r.amount - r.cost,
            margin_percent=_percent(r.amount - r.cost, r.amount),
        )
        for r in rows
    ]
    totals: dict[tuple[str | None, str | None], StageTotal] = {}
    for d in deals:
        t = totals.setdefault(
            (d.funnel, d.stage),
            StageTotal(
                funnel=d.funnel,
                stage=d.stage,
                stage_name=d.stage_name,
                deals=0,
                amount=0,
                production_cost=0,
                margin=0,
                margin_percent=None,
            ),
        )
        t.deals += 1
        t.amount += d.amount
        t.production_cost += d.production_cost
        t.margin += d.margin
    for t in totals.values():
        t.margin_percent = _percent(t.margin, t.amount)
    generated = utc_now_text()
    return MarginReport(
        type_code=type_code,
        cost_field=cost_field,
        generated_at=generated,
        deals=deals,
        stages=list(totals.values()),
    )


def _tables(rep: MarginReport) -> dict[str, tuple[Sequence[str], list[list[Any]]]]:
    return {
        "deals": (DEAL_HEADER, [[getattr(d, h) for h in DEAL_HEADER] for d in rep.deals]),
        "stages": (STAGE_HEADER, [[getattr(s, h) for h in STAGE_HEADER] for s in rep.stages]),
    }


def _html(rep: MarginReport, process_name: str) -> str:
    n = html_report.fmt_number
    deal_rows = [
        [
            d.deal_id,
            d.title or "",
            d.stage_name or d.stage or "",
            n(d.amount),
            d.currency or "",
            d.orders,
            n(d.production_cost),
            n(d.margin),
            "—" if d.margin_percent is None else f"{n(d.margin_percent)} %",
        ]
        for d in rep.deals
    ]
    stage_rows = [
        [
            s.funnel or "",
            s.stage_name or s.stage or "",
            s.deals,
            n(s.amount),
            n(s.production_cost),
            n(s.margin),
            "—" if s.margin_percent is None else f"{n(s.margin_percent)} %",
        ]
        for s in rep.stages
    ]
    deals_html = (
        html_report._table(
            [
                "Deal",
                "Title",
                "Stage",
                "Amount",
                "Currency",
                "Orders",
                "Production cost",
                "Margin",
                "Margin %",
            ],
            deal_rows,
            numeric=(0, 3, 5, 6, 7, 8),
        )
        if deal_rows
        else '<p class="empty">No deal has production orders in the store yet.</p>'
    )
    sections = [
        '<h2>Margin per deal</h2><p class="meta">Deal amount against the sum of '
        f"<code>{rep.cost_field}</code> of its production orders.</p>" + deals_html,
        "<h2>Totals per deal stage</h2>"
        + html_report._table(
            ["Funnel", "Stage", "Deals", "Amount", "Production cost", "Margin", "Margin %"],
            stage_rows,
            numeric=(2, 3, 4, 5, 6),
        ),
    ]
    title = f"{process_name or rep.type_code}: margin per deal"
    return html_report.render_page(title, rep.generated_at, sections, type_code=rep.type_code)


def writer(rep: MarginReport, fmt: str, process_name: str = "") -> Callable[[IO[bytes]], None]:
    """A function writing the report in `fmt` (html, csv = the per-deal table, xlsx = both tables)."""
    tables = _tables(rep)

    def html(f: IO[bytes]) -> None:
        f.write(_html(rep, process_name).encode("utf-8"))

    def csv(f: IO[bytes]) -> None:
        header, rows = tables["deals"]
        opts = WriteOptions(title=rep.type_code, headers="codes", dialect="excel")
        write_csv(plain_columns(header, rows), [rows], f, opts)

    def xlsx(f: IO[bytes]) -> None:
        write_tables(tables, f, "ru")

    return {"html": html, "csv": csv, "xlsx": xlsx}[fmt]


def margin(
    db_path: str | Path,
    type_code: str,
    fmt: str = "html",
    out: str | Path | IO[bytes] | None = None,
    cost_field: str = "cost",
) -> ReportResult:
    """Write the margin report of `type_code` from a store file."""
    fmt = check_format(fmt, FORMATS)
    with open_store(db_path) as store:
        rep = margin_report(store, type_code, cost_field)
        process_name = names(store, type_code)[0]
    target = _emit(writer(rep, fmt, process_name), out)
    return ReportResult(
        type_code=type_code, kind="margin", format=fmt, output=target, data=rep.model_dump(mode="json")
    )
