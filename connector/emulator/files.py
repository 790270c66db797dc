"""File-field values: uploads kept as bytes in the portal state, `{id, url, urlMachine}` on output,
and the download route that serves the bytes back.

bitrix24-rest.md §9.3: a file is written as `["name.pdf", "<base64>"]` and read as
`{"id":30577,"url":"...","urlMachine":"...(contains auth token)"}`; `{"id":N}` keeps a file.
server-behaviour.md §1 "Item JSON values": file UFs come back as `{"id":..,"url":..}`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any
from urllib.parse import parse_qs

from .params import is_numeric, php_int
from .state import PortalState, StoredFile

DOWNLOAD_PATH = "/bitrix/tools/crm_show_file.php"


def store_upload(state: PortalState, name: str, encoded: str) -> dict[str, Any] | None:
    """Keep the bytes of a `[name, base64]` upload; the stored value is `{"id": N}` (None: bad base64)."""
    try:
        data = base64.b64decode(encoded, validate=False)  # PHP base64_decode is lenient too
    except (binascii.Error, ValueError):
        return None
    fid = state.seq.next("file_id")
    state.files[fid] = StoredFile(fid, name, data, secrets.token_hex(8))
    state.dirty_files.add(fid)
    return {"id": fid}


def kept_file(state: PortalState, raw_id: Any) -> dict[str, Any] | None:
    """`{"id": N}` keeps file N when the portal has it; an unknown id resets the value (None)."""
    if not is_numeric(raw_id):
        return None
    fid = php_int(raw_id)
    return {"id": fid} if fid in state.files else None


def file_json(value: Any, state: PortalState, base: str) -> dict[str, Any] | None:
    """A stored file value as items show it: `{id, url, urlMachine}` with absolute urls under `base`."""
    if not isinstance(value, dict) or not is_numeric(value.get("id")):
        return None
    fid = php_int(value["id"])
    stored = state.files.get(fid)
    url = f"{base.rstrip('/')}{DOWNLOAD_PATH}?fileId={fid}"
    machine = f"{url}&auth={stored.token}" if stored is not None else url
    return {"id": fid, "url": url, "urlMachine": machine}


def download(state: PortalState, query: str) -> tuple[int, bytes, str]:
    """(status, body, content type) for a GET of a file url; 404 names the unknown id."""
    args = parse_qs(query)
    raw = (args.get("fileId") or [""])[0]
    stored = state.files.get(int(raw)) if raw.isdecimal() else None
    if stored is None:
        return 404, f"file {raw or '(no fileId)'} not found".encode(), "text/plain; charset=utf-8"
    token = next(iter(args.get("auth") or []), None)
    if token is not None and token != stored.token:
        return 403, f"file {stored.id}: the auth token does not match".encode(), "text/plain; charset=utf-8"
    return 200, stored.data, "application/octet-stream"
