"""`b24sync report contracts`: per company, its contracts with status and end date. Contracts ending
within N days come first; expired contracts still at an open stage are flagged. Reads the process
table, its stage labels, the end dates sync copied into `_item_dates` and company titles from
`_companies` (sync/rules.py `pull_linked`); stage semantics come from the template kept by sync."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

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
HEADER = [
    "company_id",
    "company",
    "id",
    "contract_no",
    "title",
    "stage",
    "stage_name",
    "open",
    "end_date",
    "days_left",
    "flag",
]
FLAG_EXPIRING, FLAG_EXPIRED = "expiring", "expired but open"


class ContractRow(BaseModel):
    company_id: int | None
    company: str
    id: int | None
    contract_no: str | None
    title: str | None
    stage: str | None
    stage_name: str | None
    open: bool
    end_date: str | None
    days_left: int | None
    flag: str


class ContractsReport(BaseModel):
    type_code: str
    days: int
    today: str
    generated_at: str
    rows: list[ContractRow]


def _closed_stages(store: StoreReader, type_code: str) -> set[tuple[str | None, str]]:
    """(funnel, stage) codes with success/failure meaning, as the store recorded them from the template
    (an item stored without a funnel is in the default funnel)."""
    catalog = store.catalog(type_code)
    closed: set[tuple[str | None, str]] = set()
    for funnel in catalog.funnels:
        for stage in funnel.stages:
            if stage.semantics != "process":
                closed.add((funnel.code, stage.code))
                if funnel.code == catalog.default_funnel:
                    closed.add((None, stage.code))
    return closed


def contracts_report(
    store: StoreReader, type_code: str = "contract", days: int = 30, today: date | None = None
) -> ContractsReport:
    """Compute the report from a store opened for reading."""
    if days < 0:
        raise ReportError(f"--days must be 0 or more, got {days}")
    require_process(store, type_code)
    cols = set(store.columns(type_code))
    if "company_id" not in cols:
        raise ReportError(f"process {type_code!r} has no client company (isClientEnabled is off)")
    today = today or datetime.now(UTC).date()
    closed = _closed_stages(store, type_code)
    rows: list[ContractRow] = []
    for item in store.client_items(type_code, "contract_no" if "contract_no" in cols else None):
        is_open = (item.funnel, item.stage) not in closed
        end_date = item.close_date
        left = (date.fromisoformat(end_date[:10]) - today).days if end_date else None
        flag = ""
        if is_open and left is not None:
            flag = FLAG_EXPIRED if left < 0 else FLAG_EXPIRING if left <= days else ""
        cid = item.company_id
        rows.append(
            ContractRow(
                company_id=cid,
                company=item.company or (f"#{cid}" if cid else "(no company)"),
                id=item.id,
                contract_no=item.number,
                title=item.title,
                stage=item.stage,
                stage_name=item.stage_name,
                open=is_open,
                end_date=end_date,
                days_left=left,
                flag=flag,
            )
        )
    rank = {FLAG_EXPIRED: 0, FLAG_EXPIRING: 1, "": 2}
    rows.sort(
        key=lambda r: (r.company.lower(), rank[r.flag], r.days_left if r.days_left is not None else 10**6)
    )
    # companies with something to act on come first
    urgency: dict[str, int] = {}
    for r in rows:
        urgency[r.company] = min(urgency.get(r.company, 2), rank[r.flag])
    rows.sort(key=lambda r: urgency[r.company])
    generated = utc_now_text()
    return ContractsReport(
        type_code=type_code, days=days, today=today.isoformat(), generated_at=generated, rows=rows
    )


def _html(rep: ContractsReport, process_name: str) -> str:
    sections = [
        f'<p class="meta">Contracts ending within {rep.days} days come first; expired contracts still '
        f"at an open stage are flagged. Today is {rep.today}.</p>"
    ]
    by_company: dict[str, list[ContractRow]] = {}
    for r in rep.rows:
        by_company.setdefault(r.company, []).append(r)
    for company, rows in by_company.items():
        table = html_report._table(
            ["Contract", "Title", "Status", "End date", "Days left", "Flag"],
            [
                [
                    r.contract_no or r.id,
                    r.title or "",
                    r.stage_name or r.stage or "",
                    r.end_date or "—",
                    "—" if r.days_left is None else r.days_left,
                    r.flag.upper() if r.flag else "",
                ]
                for r in rows
            ],
            numeric=(4,),
        )
        sections.append(f"<h2>{html_report.escape(company)}</h2>{table}")
    if not rep.rows:
        sections.append('<p class="empty">No contracts in the store.</p>')
    title = f"{process_name or rep.type_code}: contracts by company"
    return html_report.render_page(title, rep.generated_at, sections, type_code=rep.type_code)


def writer(rep: ContractsReport, fmt: str, process_name: str = "") -> Callable[[IO[bytes]], None]:
    rows = [[getattr(r, h) for h in HEADER] for r in rep.rows]

    def html(f: IO[bytes]) -> None:
        f.write(_html(rep, process_name).encode("utf-8"))

    def csv(f: IO[bytes]) -> None:
        opts = WriteOptions(title=rep.type_code, headers="codes", dialect="excel")
        write_csv(plain_columns(HEADER, rows), [rows], f, opts)

    def xlsx(f: IO[bytes]) -> None:
        write_tables({"contracts": (HEADER, rows)}, f, "ru")

    return {"html": html, "csv": csv, "xlsx": xlsx}[fmt]


def contracts(
    db_path: str | Path,
    type_code: str = "contract",
    fmt: str = "html",
    out: str | Path | IO[bytes] | None = None,
    days: int = 30,
    today: date | None = None,
) -> ReportResult:
    """Write the contracts report from a store file."""
    fmt = check_format(fmt, FORMATS)
    with open_store(db_path) as store:
        rep = contracts_report(store, type_code, days, today)
        process_name = names(store, type_code)[0]
    target = _emit(writer(rep, fmt, process_name), out)
    return ReportResult(
        type_code=type_code, kind="contracts", format=fmt, output=target, data=rep.model_dump(mode="json")
    )
