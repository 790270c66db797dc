"""The Python face of b24sync: one `Portal` per Bitrix24 portal, mirroring the CLI commands.

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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connector.config import Config, PortalRef, load_config, resolve_portal, save_tokens
from connector.rest import Client, OAuthAuth
from connector.store import Store
from connector.templates import Template, load_templates

TemplatesArg = str | Path | Template | Sequence[str | Path | Template]


class Portal:
    """A portal, its REST client and its local store; every method is one CLI command."""

    def __init__(self, ref: PortalRef, client: Client | None = None) -> None:
        self.ref = ref
        self.client = client or client_for(ref)
        self._store: Store | None = None

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

    def __repr__(self) -> str:
        return f"Portal({self.ref.name!r}, store={str(self.ref.store)!r})"

    @property
    def key(self) -> str:
        """The portal key of the id map (host[:port])."""
        return self.ref.key

    @property
    def store(self) -> Store:
        """The local store, opened (and migrated) on first use."""
        if self._store is None:
            self.ref.store.parent.mkdir(parents=True, exist_ok=True)
            self._store = Store.open(self.ref.store)
        return self._store

    def close(self) -> None:
        """Close the local store."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Portal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- deploy ----------------------------------------------------------------------------------
    def plan(self, templates: TemplatesArg, *, allow_destructive: bool = False) -> Any:
        """What `apply` would do (`b24sync plan`)."""
        from connector.deploy import plan

        return plan(self.client, _templates(templates), self.store, allow_destructive=allow_destructive)

    def apply(self, templates: TemplatesArg, *, allow_destructive: bool = False,
              dry_run: bool = False) -> Any:
        """Make the portal match the templates (`b24sync apply`); the store gets their tables too."""
        from connector.deploy import apply
        from connector.sync import prepare_store

        loaded = _templates(templates)
        result = apply(self.client, loaded, self.store, allow_destructive=allow_destructive, dry_run=dry_run)
        if not dry_run:
            prepare_store(self.store, loaded)
        return result

    def drift(self, templates: TemplatesArg | None = None) -> Any:
        """What changed on the portal since the last apply (`b24sync drift`)."""
        from connector.deploy import drift

        return drift(self.client, self.store, _templates(templates) if templates is not None else None)

    def adopt(self, type_ref: int | str) -> Template:
        """A template written from an existing smart process (`b24sync adopt`)."""
        from connector.deploy import adopt

        return adopt(self.client, type_ref, self.store)

    # -- sync ------------------------------------------------------------------------------------
    def sync(self, templates: TemplatesArg | None = None, *, full: bool = False, pull: bool = True,
             push: bool = True, policy: str | None = None, only: Sequence[str] | None = None) -> Any:
        """Two-way sync of items with the local store (`b24sync sync`)."""
        from connector.sync import sync

        return sync(self.client, self.store, _templates(templates) if templates is not None else None,
                    portal_key=self.key, full=full, pull=pull, push=push,
                    policy=policy or self.ref.conflict_policy, policies=dict(self.ref.policies),
                    only=list(only) if only else None)

    # -- reports ---------------------------------------------------------------------------------
    def export(self, type_code: str, fmt: str, out: str | Path, *, where: str | None = None,
               columns: Sequence[str] | None = None, bom: bool = False, include_deleted: bool = False) -> Any:
        """Export one process's items with labels (`b24sync export`)."""
        from connector.reports import export
        from connector.reports.people import people_for

        people = people_for(lambda: self.client, self.ref.store, type_code)
        return export(self.ref.store, type_code, fmt, out, where=where, columns=columns, bom=bom,
                      include_deleted=include_deleted, tz=people.tz, users=people.users)

    def report(self, type_code: str, kind: str = "funnel", fmt: str = "html",
               out: str | Path | None = None, *, template: str | Path | Template | None = None) -> Any:
        """A funnel / time-in-stage / aging report (`b24sync report`); `template`: stage order, names."""
        from connector.reports import report
        from connector.reports.people import people_for

        loaded = _templates(template)[0] if template is not None else None
        zone = people_for(lambda: self.client, self.ref.store, type_code, names=False).tz
        return report(self.ref.store, type_code, kind, fmt, out, template=loaded, tz=zone)

    def status(self) -> Any:
        """Last runs, cursors, pending changes, conflicts, failed rows (`b24sync status`)."""
        from connector.reports import status

        return status(self.ref.store)


def client_for(ref: PortalRef) -> Client:
    """The REST client for a resolved portal (webhook, or OAuth with refreshed tokens persisted)."""
    if ref.oauth:
        settings = dict(ref.oauth)
        token_file = settings.pop("token_file", None)
        auth = OAuthAuth(on_tokens=lambda tokens: save_tokens(token_file, tokens), **settings)
        return Client(auth, plan=ref.plan, allow_http=ref.allow_http)
    return Client.from_webhook(ref.url, plan=ref.plan, allow_http=ref.allow_http)


def _templates(templates: TemplatesArg) -> list[Template]:
    items = [templates] if isinstance(templates, (str, Path, Template)) else list(templates)
    loaded = [t for t in items if isinstance(t, Template)]
    files = [str(t) for t in items if not isinstance(t, Template)]
    return loaded + (list(load_templates(files)) if files else [])
