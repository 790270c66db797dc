"""Scheduled jobs from `jobs/*.toml`: validation, a dispatch table of runners, APScheduler wiring.

A job file describes one job::

    kind = "sync"                 # sync | reconcile | export | report | apply
    portal = "demo"               # a portal name from the config
    interval = "15m"              # or: cron = "0 3 * * *"  (minute hour day month weekday)

Every run is recorded in the store's `_runs` table with its outcome and figures, and announced in
one line when it starts and one when it ends (outcome, figures, next run). Interval jobs also run
once at start-up unless `run_at_start = false` (or `b24sync run --no-run-at-start`). A job never
overlaps itself, missed runs are coalesced, a failing job never stops the others, and SIGTERM or
SIGINT let the running step finish before the process exits.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
import tomllib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal

from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from connector.errors import InputError
from connector.rest import Client
from connector.store import Store

if TYPE_CHECKING:
    from connector.api import Portal

log = logging.getLogger("b24sync.scheduler")

KINDS = ("sync", "reconcile", "export", "report", "apply")
KINDS_ONCE_ORDER = ("apply", "sync", "reconcile", "export", "report")  # the order of `run --once`
POLICIES = ("remote-wins", "local-wins", "newest-wins", "merge", "manual")
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
# Job files we did not write: bounded size and nesting; names, codes and columns that can
# reach a file path or SQL are plain ASCII words (\Z, not $: `$` matches before a trailing newline).
MAX_JOB_BYTES = 64 * 1024
MAX_JOB_DEPTH = 3  # a job is a flat table of values and lists of strings
MAX_INTERVAL = 366 * 86400.0
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")  # a process code (templates PROCESS_CODE_RE)
COLUMN_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expr: str) -> CronTrigger:
    """A CronTrigger with crontab semantics: numeric weekdays are 0/7 = Sunday (APScheduler 3 counts Monday
    as 0, so they are translated to names first)."""
    fields = expr.split()
    if len(fields) == 5:
        def name(m: re.Match[str]) -> str:
            return _WEEKDAYS[int(m.group())] if int(m.group()) < 8 else m.group()

        fields[4] = re.sub(r"(?<![/\d])\d+", name, fields[4])
    return CronTrigger.from_crontab(" ".join(fields))


class JobConfigError(InputError, ValueError):
    """Invalid job files; the message names every file and key that is wrong."""


def parse_interval(value: str | float) -> float:
    """Seconds from `90`, `"30s"`, `"15m"`, `"2h"` or `"1d"`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _INTERVAL.match(str(value))
        if not match:
            raise ValueError(f"bad interval {value!r}: use seconds or a number with s, m, h or d ('15m')")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"interval must be positive, got {value!r}")
    if seconds > MAX_INTERVAL:
        raise ValueError(f"interval {value!r} is longer than a year; use a cron expression for rare jobs")
    return seconds


def _shown(portal: str) -> str:
    """A portal as an error may show it: a name as is, a webhook URL without its secret."""
    from connector.config import redact

    return redact(portal) if "://" in portal else portal


def _word(value: str, pattern: re.Pattern[str], what: str, rule: str) -> str:
    """`value` if it matches `pattern`, else ValueError naming the rule (and a non-ASCII look-alike)."""
    if not pattern.match(value):
        odd = next((c for c in value if not c.isascii()), None)
        note = f" ({odd!r} is U+{ord(odd):04X}, not ASCII)" if odd else ""
        raise ValueError(f"{what} {value!r} is not allowed{note}; {rule}")
    return value


def _codes(values: list[str], what: str) -> list[str]:
    for value in values:
        _word(value, CODE_RE, what, "process codes match ^[a-z][a-z0-9_]{0,39}$")
    return values


def _depth(value: Any, limit: int) -> int:
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    inner = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(v, limit - 1) for v in inner), default=0)


class _Job(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = ""
    portal: str
    db: str | None = None
    interval: str | float | None = None
    cron: str | None = None
    misfire_grace_time: int = Field(default=300, ge=1, le=7 * 86400)
    enabled: bool = True
    run_at_start: bool = True  # interval jobs: one run at start-up, then every interval

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return _word(value, JOB_NAME_RE, "job name", "use up to 64 ASCII letters, digits, '_', '-' or '.', "
                     "starting with a letter or digit (the name defaults to the file name)")

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            parse_interval(value)
        return value

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                cron_trigger(value)
            except ValueError as exc:
                raise ValueError(
                    f"bad cron expression {value!r} ({exc}); expected 5 fields: minute hour day month weekday"
                ) from None
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> _Job:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("give exactly one of 'interval' (e.g. '15m') or 'cron' (e.g. '0 3 * * *')")
        return self

    def trigger(self) -> IntervalTrigger | CronTrigger:
        """The APScheduler trigger of this job."""
        if self.cron is not None:
            return cron_trigger(self.cron)
        return IntervalTrigger(seconds=parse_interval(self.interval))  # type: ignore[arg-type]


class SyncJob(_Job):
    """Two-way sync of some (default: all remembered) processes."""

    kind: Literal["sync"]
    processes: list[str] = Field(default=[], max_length=200)
    templates: list[str] = Field(default=[], max_length=200)
    policy: Literal["remote-wins", "local-wins", "newest-wins", "merge", "manual"] | None = None
    direction: Literal["both", "pull", "push"] = "both"

    @field_validator("processes")
    @classmethod
    def _check_processes(cls, value: list[str]) -> list[str]:
        return _codes(value, "process")


class ReconcileJob(_Job):
    """Full pull with the deletion check (every id on the portal), e.g. nightly."""

    kind: Literal["reconcile"]
    processes: list[str] = Field(default=[], max_length=200)
    templates: list[str] = Field(default=[], max_length=200)
    policy: Literal["remote-wins", "local-wins", "newest-wins", "merge", "manual"] | None = None

    @field_validator("processes")
    @classmethod
    def _check_processes(cls, value: list[str]) -> list[str]:
        return _codes(value, "process")


class _OutputJob(_Job):
    type: str
    output: str = Field(max_length=1024)

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        return _codes([value], "process")[0]

    @field_validator("output")
    @classmethod
    def _check_output(cls, value: str) -> str:
        if "\x00" in value or ".." in Path(value).parts or ".." in re.split(r"[\\/]", value):
            raise ValueError(f"output {value!r} may not climb out of its folder with '..'; "
                             "give a path below the working folder or an absolute path")
        try:
            value.format(date=datetime.now(), portal="p", job="j", type="t")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"bad output pattern {value!r} ({exc!r}); "
                "placeholders: {date:%Y-%m-%d}, {portal}, {job}, {type}"
            ) from None
        return value

    @model_validator(mode="after")
    def _portal_in_file_name(self) -> _OutputJob:
        if "{portal" in self.output and not JOB_NAME_RE.match(self.portal):
            raise ValueError(f"output {self.output!r} puts the portal into a file name, and portal "
                             f"{_shown(self.portal)!r} is not a plain name; use a configured portal name "
                             "or drop {portal}")
        return self

    def output_path(self, now: datetime) -> Path:
        """The output file for a run at `now` (date pattern filled in)."""
        return Path(self.output.format(date=now, portal=self.portal, job=self.name, type=self.type))


class ExportJob(_OutputJob):
    """Export a process's items to a file."""

    kind: Literal["export"]
    format: Literal["csv", "xlsx", "jsonl", "html"] = "csv"
    where: str | None = None
    columns: list[str] = Field(default=[], max_length=2000)
    bom: bool = False

    @field_validator("columns")
    @classmethod
    def _check_columns(cls, value: list[str]) -> list[str]:
        for column in value:
            _word(column, COLUMN_RE, "column", "columns are store column names: ^[a-z][a-z0-9_]*$")
        return value


class ReportJob(_OutputJob):
    """Write a funnel / time-in-stage / aging (or all) report to a file."""

    kind: Literal["report"]
    report: Literal["funnel", "time-in-stage", "aging", "all"] = "all"
    format: Literal["html", "csv", "xlsx"] = "html"


class ApplyJob(_Job):
    """Deploy templates to the portal on a schedule."""

    kind: Literal["apply"]
    templates: list[str] = Field(min_length=1, max_length=200)
    allow_destructive: bool = False


Job = Annotated[SyncJob | ReconcileJob | ExportJob | ReportJob | ApplyJob, Field(discriminator="kind")]
_JOB = TypeAdapter(Job)
_MODELS: dict[str, type[BaseModel]] = {
    "sync": SyncJob, "reconcile": ReconcileJob, "export": ExportJob, "report": ReportJob, "apply": ApplyJob,
}


def _key(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in KINDS]
    return ".".join(parts) or "(file)"


def _describe(error: ErrorDetails) -> str:
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid":
        return f"key 'kind': unknown kind {error['input'].get('kind')!r}; allowed: {', '.join(KINDS)}"
    if error["type"] == "union_tag_not_found":
        return f"key 'kind' is missing; allowed: {', '.join(KINDS)}"
    if error["type"] == "extra_forbidden":
        model = _MODELS.get(str(error["loc"][0]))
        allowed = f"; allowed keys: {', '.join(['kind', *model.model_fields])}" if model else ""
        return f"key '{_key(error['loc'])}': unknown key{allowed}"
    return f"key '{_key(error['loc'])}': {msg}"


def load_job(path: Path, portals: Collection[str] | None = None) -> Job:
    """One job file, validated; raise JobConfigError naming the file and every key that is wrong."""
    try:
        if path.stat().st_size > MAX_JOB_BYTES:
            raise JobConfigError(f"{path}: the file is {path.stat().st_size} bytes; job files are at most "
                                 f"{MAX_JOB_BYTES} bytes")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise JobConfigError(f"{path}: not a readable TOML file: {exc}") from None
    except RecursionError:
        data = None
    if data is None or _depth(data, MAX_JOB_DEPTH + 1) > MAX_JOB_DEPTH:
        raise JobConfigError(f"{path}: values nest deeper than a job file allows (a flat table of values "
                             "and lists of strings)")
    data.setdefault("name", path.stem)
    try:
        job = _JOB.validate_python(data)
    except ValidationError as exc:
        raise JobConfigError("\n".join(f"{path}: {_describe(e)}" for e in exc.errors())) from None
    if portals is not None and job.portal not in portals and not job.portal.startswith(("http://", "https://")):
        known = ", ".join(sorted(portals)) or "none"
        raise JobConfigError(
            f"{path}: key 'portal': unknown portal {job.portal!r}; configured portals: {known}"
        )
    if isinstance(job, SyncJob | ReconcileJob | ApplyJob) and job.templates:
        job.templates = _check_templates(path, job.templates)
    return job


def resolve_template(job_file: Path, name: str) -> Path | None:
    """A job's template file: as given (absolute, or relative to the current folder), else relative to
    the project folder holding `jobs/` (so `mappings/x.toml` works from anywhere); None if not found."""
    given = Path(name).expanduser()
    folders = [Path(), job_file.parent, job_file.parent.parent]
    candidates = [given] if given.is_absolute() else [folder / given for folder in folders]
    return next((c for c in candidates if c.is_file()), None)


def _check_templates(path: Path, names: list[str]) -> list[str]:
    """Template paths resolved and parsed now, so a bad one is refused at start (not at 3 a.m.)."""
    from connector.templates import TemplateError, load_template

    resolved, problems = [], []
    for name in names:
        found = resolve_template(path, name)
        if found is None:
            problems.append(
                f"{path}: key 'templates': template file not found: {name!r} "
                f"(looked in the current folder and {path.parent.parent.resolve()})"
            )
            continue
        try:
            load_template(found)
        except TemplateError as exc:
            problems.append(f"{path}: key 'templates': template {name!r} is invalid: {exc}")
        resolved.append(str(found))
    if problems:
        raise JobConfigError("\n".join(problems))
    return resolved


def load_jobs(directory: str | Path, portals: Collection[str] | None = None) -> list[Job]:
    """Every `*.toml` job in a folder (disabled ones skipped); all problems reported at once."""
    folder = Path(directory)
    if not folder.is_dir():
        raise JobConfigError(f"jobs folder not found: {folder}")
    jobs: list[Job] = []
    problems: list[str] = []
    names: dict[str, Path] = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            job = load_job(path, portals)
        except JobConfigError as exc:
            problems.append(str(exc))
            continue
        folded = job.name.casefold()
        if folded in names:
            problems.append(f"{path}: key 'name': job name {job.name!r} is also used by {names[folded]} "
                            "(names differing only in letter case are one name: their files would clash)")
        names[folded] = path
        if job.enabled:
            jobs.append(job)
    if problems:
        raise JobConfigError("\n".join(problems))
    return jobs


# ---- running ------------------------------------------------------------------------------------


@dataclass
class JobEnv:
    """What jobs need from outside: a client, the store file and the id-map key of a portal."""

    open_client: Callable[[str], Client]
    store_path: Callable[[str, str | None], Path]
    portal_key: Callable[[str], str]
    default_policy: Callable[[str], str] = lambda _portal: "newest-wins"
    now: Callable[[], datetime] = datetime.now

    def portal(self, name: str, store: Store) -> Portal:
        """The `Portal` a job works through: its client (made on first use), the open store, the key."""
        from connector.api import Portal

        return Portal(None, store=store, open_client=lambda: self.open_client(name),
                      key=self.portal_key(name), policy=self.default_policy(name), name=_shown(name))


@dataclass
class JobOutcome:
    """The result of one run of one job."""

    job: str
    kind: str
    status: str  # ok | partial | failed
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


Runner = Callable[[Any, JobEnv, Store], dict[str, Any]]


def _scalars(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None}


def run_sync(job: SyncJob | ReconcileJob, env: JobEnv, store: Store) -> dict[str, Any]:
    """sync / reconcile: `Portal.sync`; reconcile is a full pull with the deletion check."""
    from connector.sync import lock

    full = job.kind == "reconcile"
    direction = getattr(job, "direction", "both")
    report = env.portal(job.portal, store).sync(
        job.templates or None, types=job.processes or None, full=full, pull_only=full or direction == "pull",
        push_only=direction == "push", policy=job.policy, wait=lock.DEFAULT_WAIT,
    )
    figures = dict(report.summary())
    figures["status"] = "partial" if report.failures else "ok"
    return figures


def run_apply(job: ApplyJob, env: JobEnv, store: Store) -> dict[str, Any]:
    """apply: `Portal.apply` of the job's templates (the store gets their tables, as `b24sync apply`)."""
    result = env.portal(job.portal, store).apply(job.templates, allow_destructive=job.allow_destructive)
    figures = _scalars(result.model_dump(exclude={"plan", "commands"}))
    figures["status"] = "ok" if result.converged else "partial"
    return figures


def run_export(job: ExportJob, env: JobEnv, store: Store) -> dict[str, Any]:
    """export: `Portal.export` to the job's dated output path."""
    result = env.portal(job.portal, store).export(
        job.type, job.format, job.output_path(env.now()), where=job.where, columns=job.columns or None,
        bom=job.bom)
    return {"rows": result.rows, "output": result.output, **never_synced(job, env, store)}


def run_report(job: ReportJob, env: JobEnv, store: Store) -> dict[str, Any]:
    """report: `Portal.report` to the job's dated output path."""
    out = job.output_path(env.now())
    result = env.portal(job.portal, store).report(job.type, job.report, job.format, out)
    return {"report": result.kind, "output": result.output, **never_synced(job, env, store)}


def never_synced(job: ExportJob | ReportJob, env: JobEnv, store: Store) -> dict[str, Any]:
    """For export/report of an empty process never pulled from the job's portal: status `partial` and a
    note saying so, so an empty file from an unsynced store is never reported as a plain "ok"."""
    if store.cursor_get(env.portal_key(job.portal), job.type) is not None:
        return {}
    if env.portal(job.portal, store).status().processes.get(job.type, 0) > 0:
        return {}  # rows put there by hand or by another tool: the file is not empty
    return {"status": "partial",
            "note": f"empty: {job.type} was never synced from portal {job.portal!r} into {store.path}; "
                    "run a sync job for it first"}


RUNNERS: dict[str, Runner] = {
    "sync": run_sync, "reconcile": run_sync, "apply": run_apply, "export": run_export, "report": run_report,
}


def _open_store(path: Path) -> Store:
    """The portal's store file (its folder is created, as the CLI does for `--db`)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return Store.open(path)


def outcome_line(outcome: JobOutcome, next_run: datetime | None = None) -> str:
    """One line for a finished run: job, outcome, figures, error and the next run."""
    shown = " ".join(f"{k}={v}" for k, v in outcome.figures.items())
    parts = [f"job {outcome.job} ({outcome.kind}): {outcome.status} in {outcome.seconds:.1f} s"]
    if shown:
        parts.append(shown)
    if outcome.error:
        parts.append(f"error: {outcome.error}")
    if next_run is not None:
        parts.append(f"next run {next_run:%Y-%m-%d %H:%M:%S}")
    return "; ".join(parts)


def _log_line(line: str) -> None:
    """The default announcer: the `b24sync.scheduler` log (failed runs at ERROR level)."""
    log.info("%s", line)


class JobRunner:
    """Runs jobs (once, or on their schedules) and records every run in the store's `_runs`.

    `announce(line)` hears one line when a run starts and one when it ends (default: the log).
    """

    def __init__(self, jobs: Sequence[Job], env: JobEnv, runners: dict[str, Runner] | None = None,
                 open_store: Callable[[Path], Store] = _open_store,
                 announce: Callable[[str], None] | None = None, run_at_start: bool = True) -> None:
        self.jobs = list(jobs)
        self.env = env
        self.runners = dict(RUNNERS if runners is None else runners)
        self.open_store = open_store
        self.announce = announce or _log_line
        self.run_at_start = run_at_start
        self.stop_event = threading.Event()
        self._scheduled: dict[str, Any] = {}  # job name -> the APScheduler job (in its memory store)

    def run_job(self, job: Job) -> JobOutcome:
        """Run one job now, announced at start and end; never raises (a failure is announced and recorded)."""
        self.announce(f"job {job.name} ({job.kind}) started")
        outcome = self._run_job(job)
        line = outcome_line(outcome, self.next_run(job))
        if outcome.status == "failed" and self.announce is _log_line:
            log.error("%s", line)
        else:
            self.announce(line)
        return outcome

    def next_run(self, job: Job) -> datetime | None:
        """When the scheduler runs `job` next (None outside `run_forever`, or when stopping).

        Read from the job object the memory job store keeps, not via `get_job`, whose lock a
        stopping scheduler holds while it waits for this very run to end.
        """
        scheduled = self._scheduled.get(job.name)
        if scheduled is None or self.stop_event.is_set():
            return None
        when = getattr(scheduled, "next_run_time", None)
        return when.replace(tzinfo=None) if when is not None and when.tzinfo is not None else when

    def _run_job(self, job: Job) -> JobOutcome:
        started = time.monotonic()
        outcome = JobOutcome(job=job.name, kind=job.kind, status="failed")
        store = None
        try:
            store = self.open_store(self.env.store_path(job.portal, job.db))
            before = _last_run_id(store)
            try:
                figures = self.runners[job.kind](job, self.env, store)
                outcome.status = str(figures.pop("status", "ok"))
                outcome.figures = figures
            except Exception as exc:  # noqa: BLE001 - one failing job must not stop the others
                outcome.error = f"{type(exc).__name__}: {exc}"
                log.debug("job %s failed", job.name, exc_info=True)
            outcome.seconds = round(time.monotonic() - started, 3)
            self._record(store, job, outcome, before)
        except Exception as exc:  # noqa: BLE001 - e.g. the store cannot be opened
            outcome.error = outcome.error or f"{type(exc).__name__}: {exc}"
            log.debug("job %s could not run or be recorded", job.name, exc_info=True)
        finally:
            if store is not None:
                store.close()
        return outcome

    def _record(self, store: Store, job: Job, outcome: JobOutcome, before: int) -> None:
        """Tag the runs the job's API recorded itself (sync does) with the job name, else add one."""
        tagged = store.tag_runs(job.name, before, "sync" if job.kind in ("sync", "reconcile") else job.kind)
        if not tagged:
            run_id = store.run_start(job.kind, self.env.portal_key(job.portal), job=job.name)
            store.run_finish(run_id, outcome.status, {**outcome.figures, "seconds": outcome.seconds},
                             outcome.error)

    def run_once(self) -> list[JobOutcome]:
        """Each job once (for tests and for system cron): apply, sync, reconcile, then export and report, so
        a fresh store is deployed and filled before it is exported; jobs of one kind in file-name order."""
        outcomes = []
        for job in sorted(self.jobs, key=lambda j: KINDS_ONCE_ORDER.index(j.kind)):
            if self.stop_event.is_set():
                break
            outcomes.append(self.run_job(job))
        return outcomes

    def build_scheduler(self) -> BackgroundScheduler:
        """An APScheduler with every job: no overlap, missed runs coalesced, grace time per job."""
        scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        for job in self.jobs:
            first: dict[str, Any] = {}
            if job.interval is not None and job.run_at_start and self.run_at_start:
                first["next_run_time"] = datetime.now().astimezone()
            self._scheduled[job.name] = scheduler.add_job(
                self.run_job, trigger=job.trigger(), args=[job], id=job.name, name=job.name, max_instances=1,
                coalesce=True, misfire_grace_time=job.misfire_grace_time, **first)
        return scheduler

    def run_forever(self, install_signals: bool = True) -> None:
        """Run on schedule until stop() or SIGTERM/SIGINT; running jobs finish before returning."""
        scheduler = self.build_scheduler()
        previous = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        scheduler.start()
        try:
            while not self.stop_event.wait(0.5):
                pass
        finally:
            log.info("stopping: waiting for running jobs to finish")
            scheduler.shutdown(wait=True)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s: finishing the running step, then exiting", signal.Signals(signum).name)
        self.stop()
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once

    def stop(self) -> None:
        """Ask run_forever / run_once to end after the running step."""
        self.stop_event.set()


def _last_run_id(store: Store) -> int:
    return store.last_run_id()
