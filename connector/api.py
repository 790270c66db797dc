"""The Python face of b24sync: one `Portal` per Bitrix24 portal; every CLI command is one of its methods.

The CLI and the scheduler's jobs call these methods too, so the three never drift apart: a method
takes the command's options under the same names with the same defaults, and returns the typed
result the command prints (`Plan`, `ApplyResult`, `SyncReport`, ...).

```python
from connector import Portal

with Portal.from_webhook("https://acme.bitrix24.ru/rest/1/<code>/", store="acme.db") as portal:
    print(portal.plan("mappings/hr_candidates.toml").render())     # the plan as text
    portal.apply("mappings/hr_candidates.toml")
    report = portal.sync()
    portal.export("candidate", "xlsx", "candidates.xlsx")
```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from connector.config import Config, PortalRef, load_config, resolve_portal, save_tokens
from connector.errors import B24SyncError, UsageError
from connector.store import Store
from connector.templates import Template, load_templates

if TYPE_CHECKING:
    from connector.deploy import ApplyResult, Drift, Plan
    from connector.doctor import DoctorReport
    from connector.reports import ExportResult, ReportResult, StatusReport
    from connector.reports.people import PortalPeople
    from connector.rest import ApiResponse, Client  # requests: imported when a client is made
    from connector.store.models import Conflict
    from connector.sync import SyncReport
    from connector.sync.engine import Progress
    from connector.sync.rules import RuleFiring

TemplatesArg = str | Path | Template | Sequence[str | Path | Template]
Warn = Callable[[str], None]

log = logging.getLogger("b24sync.api")

LINKED_REPORTS = {"margin": "production_order", "contracts": "contract"}  # kind -> default process


class Portal:
    """A portal, its REST client and its local store; every method is one CLI command.

    A portal built with only a store (`Portal.from_store`) can do what needs no portal: `status`,
    `conflicts`, `resolve_conflict`, and `export`/`report` without employee names.
    """

    def __init__(self, ref: PortalRef | None = None, client: Client | None = None, *,
                 store: str | Path | Store | None = None, open_client: Callable[[], Client] | None = None,
                 key: str | None = None, policy: str | None = None, name: str | None = None,
                 warn: Warn | None = None) -> None:
        self.ref = ref
        self.name = name or (ref.name if ref is not None else "store")
        self._client = client
        self._has_portal = ref is not None or client is not None or open_client is not None
        self._open_client = open_client or (lambda: client_for(_need(ref)))
        self._key = key or (ref.key if ref is not None else None)
        self.conflict_policy = policy or (ref.conflict_policy if ref is not None else "newest-wins")
        self.policies: dict[str, str] = dict(ref.policies) if ref is not None else {}
        self._store = store if isinstance(store, Store) else None
        self._owns_store = self._store is None
        path = store.path if isinstance(store, Store) else store
        if path is None and ref is None:
            raise UsageError("give --db PATH or --portal NAME")
        self.store_path = Path(path) if path is not None else _need(ref).store
        self.warn: Warn = warn or (lambda line: log.warning("%s", line))

    @classmethod
    def from_config(cls, name: str, config: Config | str | Path | None = None) -> Portal:
        """A portal named in the config file (secrets from the environment)."""
        loaded = config if isinstance(config, Config) else load_config(config)
        return cls(resolve_portal(loaded, name))

    @classmethod
    def from_webhook(cls, url: str, *, store: str | Path | None = None, plan: str = "standard",
                     policy: str = "newest-wins", allow_http: bool = False) -> Portal:
        """A portal reached through an incoming webhook URL; `store` defaults to data/<host>.db."""
        ref = resolve_portal(Config(), url, allow_http=allow_http)
        updates: dict[str, Any] = {"plan": plan, "conflict_policy": policy}
        if store is not None:
            updates["store"] = Path(store)
        return cls(ref.model_copy(update=updates))

    @classmethod
    def from_store(cls, store: str | Path) -> Portal:
        """Only a store file, no portal: status, conflicts, exports and reports (no employee names)."""
        return cls(None, store=store)

    def __repr__(self) -> str:
        return f"Portal({self.name!r}, store={str(self.store_path)!r})"

    @property
    def key(self) -> str:
        """The portal key of the id map (host[:port])."""
        if self._key is None:
            raise UsageError("this needs a portal: give --portal NAME|URL")
        return self._key

    @property
    def client(self) -> Client:
        """The REST client, made on first use."""
        if self._client is None:
            self._client = self._open_client()
        return self._client

    @property
    def has_portal(self) -> bool:
        """Whether a portal was given (else only the store can be read)."""
        return self._has_portal

    @property
    def store(self) -> Store:
        """The local store, opened (and migrated) on first use; its folder is created."""
        if self._store is None:
            self.store_path.parent.mkdir(parents=True, exist_ok=True)
            self._store = Store.open(self.store_path)
        return self._store

    def store_exists(self) -> bool:
        """Whether the store file exists already (read-only commands never create it)."""
        return self._store is not None or str(self.store_path) == ":memory:" or self.store_path.exists()

    def close(self) -> None:
        """Close the local store (unless it was handed in open)."""
        if self._store is not None and self._owns_store:
            self._store.close()
            self._store = None

    def __enter__(self) -> Portal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def new_store_guard(self) -> Iterator[None]:
        """Remove a store file this call created if it fails before the portal ever answered.

        So a refused portal, a bad webhook or a failed first sync leave no stray store file (nor the
        folder it made); a store the portal's answers went into is kept, for the next run to resume.
        """
        path, text = self.store_path, str(self.store_path)
        fresh = not self.store_exists()
        folder_fresh = fresh and not path.parent.exists()
        try:
            yield
        except BaseException:
            answered = self._client is not None and bool(self._client.stats.statuses.get(200))
            if fresh and not answered:
                self.close()
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(text + suffix).unlink(missing_ok=True)
                if folder_fresh:
                    try:
                        path.parent.rmdir()
                    except OSError:
                        pass
            raise

    # -- deploy ----------------------------------------------------------------------------------
    def plan(self, templates: TemplatesArg, *, allow_destructive: bool = False) -> Plan:
        """What `apply` would do (`b24sync plan`); a store file that does not exist is not created."""
        from connector.deploy import plan

        store = self.store if self.store_exists() else None
        return plan(self.client, load(templates), store, allow_destructive=allow_destructive)

    def apply(self, templates: TemplatesArg, *, allow_destructive: bool = False,
              dry_run: bool = False) -> ApplyResult:
        """Make the portal match the templates (`b24sync apply`); the store gets their tables too."""
        from connector.deploy import apply
        from connector.sync import prepare_store

        loaded = load(templates)
        with self.new_store_guard():
            result = apply(self.client, loaded, self.store, allow_destructive=allow_destructive,
                           dry_run=dry_run)
            if not dry_run:
                prepare_store(self.store, loaded)
        return result

    def drift(self, templates: TemplatesArg | None = None) -> Drift:
        """What changed on the portal since the last apply (`b24sync drift`); never creates the store."""
        from connector.deploy import drift, portal_key_of
        from connector.deploy.drift import no_apply_recorded

        loaded = load(templates) if templates is not None else None
        if not self.store_exists():
            if loaded is None:
                raise no_apply_recorded(portal_key_of(self.client),
                                        f"{self.store_path} (the file does not exist)", [])
            return drift(self.client, None, loaded)
        return drift(self.client, self.store, loaded)

    def adopt(self, type_ref: int | str, *, code: str | None = None) -> Template:
        """A template written from an existing smart process (`b24sync adopt`); its ids go to the id map."""
        from connector.deploy import adopt

        with self.new_store_guard():
            return adopt(self.client, type_ref, self.store, code=code)

    # -- sync ------------------------------------------------------------------------------------
    @overload
    def sync(self, templates: TemplatesArg | None = None, *, types: Sequence[str] | None = None,
             full: bool = False, pull_only: bool = False, push_only: bool = False, policy: str | None = None,
             wait: float = 60.0, dry_run: Literal[False] = False,
             progress: Progress | None = None) -> SyncReport: ...

    @overload
    def sync(self, templates: TemplatesArg | None = None, *, types: Sequence[str] | None = None,
             full: bool = False, pull_only: bool = False, push_only: bool = False, policy: str | None = None,
             wait: float = 60.0, dry_run: Literal[True],
             progress: Progress | None = None) -> list[RuleFiring]: ...

    def sync(self, templates: TemplatesArg | None = None, *, types: Sequence[str] | None = None,
             full: bool = False, pull_only: bool = False, push_only: bool = False, policy: str | None = None,
             wait: float = 60.0, dry_run: bool = False,
             progress: Progress | None = None) -> SyncReport | list[RuleFiring]:
        """Two-way sync of items with the local store (`b24sync sync`); one sync per store at a time.

        `types` limits it to these process codes; `wait` is how long to wait for another sync of the
        same store (then `SyncLocked`, exit 75). `dry_run` returns the stage rules' decisions instead,
        changing nothing. `progress(process, phase, rows)` hears the rows done.
        """
        from connector.sync import sync
        from connector.sync.conflicts import check_policy

        if pull_only and push_only:
            raise UsageError("--pull-only and --push-only exclude each other")
        try:
            chosen = check_policy(policy or self.conflict_policy)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        loaded = load(templates) if templates else None
        if dry_run:
            return self._preview(loaded)
        with self.new_store_guard():
            return sync(self.client, self.store, loaded, portal_key=self.key, full=full, pull=not push_only,
                        push=not pull_only, policy=chosen, policies=dict(self.policies), progress=progress,
                        only=list(types or []) or None, wait=wait)

    def _preview(self, templates: list[Template] | None) -> list[RuleFiring]:
        from connector.sync.rules import preview

        if not self.store_exists():
            raise UsageError(f"no store at {self.store_path} yet: `--dry-run` previews the stage rules of a "
                             "synced store; run `b24sync sync` first")
        return preview(self.client, self.store, templates or [], portal=self.key)

    def conflicts(self, *, all: bool = False) -> list[Conflict]:  # noqa: A002 - the CLI's --all
        """Conflicts recorded by sync, open ones unless `all` (`b24sync conflicts list`)."""
        return self._synced_store().list_conflicts(None, None if all else "open")

    def resolve_conflict(self, conflict_id: int, take: str) -> Conflict:
        """Settle a conflict with `take` = local, remote or merged (`b24sync conflicts resolve`)."""
        from connector.sync import resolve_conflict

        store = self._synced_store()
        try:
            return resolve_conflict(store, conflict_id, take)
        except ValueError as exc:  # an unknown --take, conflict id, or a conflict already resolved
            raise UsageError(str(exc)) from None

    def _synced_store(self) -> Store:
        if not self.store_exists():
            raise UsageError(f"store file not found: {self.store_path} (run `b24sync sync` first, or pass "
                             "--db PATH)")
        return self.store

    # -- reports ---------------------------------------------------------------------------------
    def export(self, type_code: str, fmt: str = "csv", output: str | Path | None = None, *,
               where: str | None = None, columns: Sequence[str] | None = None, bom: bool = False,
               include_deleted: bool = False, headers: str = "labels", dialect: str | None = None,
               formula_guard: bool = True, tz: str | None = None, offline: bool = False) -> ExportResult:
        """Export one process's items with labels (`b24sync export`); `output=None` writes to stdout.

        Employee names and the time zone come from the portal unless `offline` (or no portal given).
        """
        from connector.reports import export

        _workbook_needs_file(fmt, output)
        people = self._people(type_code, offline, names=True)
        return export(self.store_path, type_code, fmt, output, where=where, columns=columns, bom=bom,
                      include_deleted=include_deleted, headers=headers, dialect=dialect,
                      formula_guard=formula_guard, tz=tz or people.tz, users=people.users)

    def report(self, type_code: str | None, kind: str = "funnel", fmt: str = "html",
               output: str | Path | None = None, *, template: str | Path | Template | None = None,
               tz: str | None = None, headers: str = "labels", dialect: str | None = None,
               offline: bool = False, days: int = 30) -> ReportResult:
        """A report (`b24sync report KIND`): funnel, time-in-stage, aging or all of one process (`template`
        gives stage order and names); margin per deal, or contracts per company (`days`: 'expiring')."""
        from connector.reports import report

        _workbook_needs_file(fmt, output)
        if kind in LINKED_REPORTS:
            return self._linked_report(kind, type_code or LINKED_REPORTS[kind], fmt, output, days)
        if type_code is None:
            raise UsageError("--type is required: the process code, e.g. --type candidate")
        loaded = load(template)[0] if template is not None else None
        zone = tz or self._people(type_code, offline, names=False).tz  # reports show no employees
        return report(self.store_path, type_code, kind, fmt, output, template=loaded, tz=zone,
                      headers=headers, dialect=dialect)

    def _linked_report(self, kind: str, type_code: str, fmt: str, out: str | Path | None,
                       days: int) -> ReportResult:
        if kind == "margin":
            from connector.reports.margin import margin

            return margin(self.store_path, type_code, fmt, out)
        from connector.reports.contracts import contracts

        return contracts(self.store_path, type_code, fmt, out, days=days)

    def status(self) -> StatusReport:
        """Last runs, cursors, pending changes, conflicts, failed rows (`b24sync status`)."""
        from connector.reports import status

        return status(self.store_path)

    def never_synced(self, type_code: str) -> bool:
        """No pull of this process ever reached the store (from any portal)."""
        return not any(c.get("tbl") == type_code for c in self.status().cursors)

    def _people(self, type_code: str, offline: bool, *, names: bool) -> PortalPeople:
        """Employee names (when `names`) and the portal's time zone; empty without a portal or offline.

        Never fails the export: a portal that cannot be asked costs the names (employees show as #id,
        times in UTC) and `warn` says so, without the webhook.
        """
        from connector.reports import ReportError
        from connector.reports.people import PortalPeople, employee_ids, portal_people

        if offline or not self.has_portal:
            return PortalPeople()
        from connector.rest.retry import RetryPolicy  # the REST client (requests) only when a portal is asked

        try:
            ids = employee_ids(self.store_path, type_code) if names else set()
            client = self.client
            saved = client.retry
            client.retry = RetryPolicy(max_attempts=2, max_total=5.0)  # names are optional: do not wait long
            try:
                return portal_people(client, ids)
            finally:
                client.retry = saved
        except ReportError:
            return PortalPeople()  # the export itself reports what is wrong with the store or process
        except Exception as exc:  # noqa: BLE001 - any failure to reach the portal only costs the names
            reason = _first_line(exc) if isinstance(exc, B24SyncError) else type(exc).__name__
            self.warn(f"user names and time zone not read from portal {self.name!r} ({reason}); "
                      "employees show as #id, times in UTC unless --tz")
            return PortalPeople()

    # -- portal ----------------------------------------------------------------------------------
    def call(self, method: str, params: Mapping[str, Any] | None = None) -> ApiResponse:
        """One REST call through the client: limits and retries, no paging (`b24sync call`)."""
        if not isinstance(method, str) or not method or "/" in method or "?" in method:
            raise UsageError(f"METHOD must be a REST method name such as 'crm.item.get'; got {method!r}")
        if params is not None and not isinstance(params, Mapping):
            raise UsageError("PARAMS_JSON must be a JSON object, e.g. '{\"entityTypeId\": 1032}'")
        return self.client.call(method, params or {})

    def doctor(self, *, sandbox: bool = False, record: str | Path | None = None) -> DoctorReport:
        """Check the portal (`b24sync doctor`): read-only checks; with `sandbox`, behaviour probes."""
        from connector.doctor import DoctorError, run_doctor

        folder = Path(record) if record is not None else None
        if folder is not None and folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise DoctorError(f"--record {folder}: give a new or empty folder (this one holds files)")
        return run_doctor(self.client, sandbox=sandbox, record=folder)


def client_for(ref: PortalRef) -> Client:
    """The REST client for a resolved portal (webhook, or OAuth with refreshed tokens persisted)."""
    from connector.rest import Client, OAuthAuth

    if ref.oauth:
        settings = dict(ref.oauth)
        token_file = settings.pop("token_file", None)
        auth = OAuthAuth(on_tokens=lambda tokens: save_tokens(token_file, tokens), **settings)
        return Client(auth, plan=ref.plan, allow_http=ref.allow_http)
    return Client.from_webhook(ref.url, plan=ref.plan, allow_http=ref.allow_http)


def load(templates: TemplatesArg) -> list[Template]:
    """Templates from files, folders or `Template` objects (the one loader of the CLI, API and jobs)."""
    items = [templates] if isinstance(templates, str | Path | Template) else list(templates)
    loaded = [t for t in items if isinstance(t, Template)]
    files = [str(t) for t in items if not isinstance(t, Template)]
    return loaded + (list(load_templates(files)) if files else [])


def _need(ref: PortalRef | None) -> PortalRef:
    if ref is None:
        raise UsageError("this needs a portal: give --portal NAME|URL")
    return ref


def _workbook_needs_file(fmt: str, out: str | Path | None) -> None:
    if fmt == "xlsx" and out is None:
        raise UsageError("--format xlsx needs -o FILE (a workbook is not written to a terminal)")


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]
