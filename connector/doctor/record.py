"""`--record DIR`: every raw exchange with the portal as JSON files, secrets masked.

Layout of a recorded directory (format `b24sync-doctor-record/1`):

- `manifest.json`: format, portal offset, server time of the first answer, the behaviour rows and
  the ordered list of exchange files;
- `NNNN-<method>.json`, one per HTTP request, in order: `seq`, `label` (the check or probe that sent
  it), `method`, `request` (the JSON body), `status`, `response` (the JSON body, or the text when it
  was not JSON); a pause of the doctor is a file with `method` "wait" and `seconds`.

Masking: the webhook code and tokens never reach the files. The URL is not stored at all (only
the method name); values of `auth`, `access_token`, `refresh_token`, `client_secret` and
`application_token` keys become `***`; every known secret and every `auth=`/`token=` query value
inside any string is replaced (file `urlMachine` links carry a token).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from connector.rest.redact import MASK, redact

FORMAT = "b24sync-doctor-record/1"
SECRET_KEYS = frozenset({"auth", "access_token", "refresh_token", "client_secret", "application_token"})
_SECRET_QUERY = re.compile(r"((?:^|[?&;])(?:auth|token|access_token|refresh_token)=)[^&#\s\"]*",
                           re.IGNORECASE)
_WEBHOOK_PATH = re.compile(r"(/rest/\d+/)[^/\s\"]+")


def mask(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """`value` with secret keys, known secrets and token query values masked, recursively."""
    if isinstance(value, dict):
        return {k: MASK if str(k).lower() in SECRET_KEYS else mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, secrets) for v in value]
    if isinstance(value, str):
        text = redact(value, secrets)
        text = _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, text)
        return _WEBHOOK_PATH.sub(lambda m: m.group(1) + MASK, text)
    return value


class Recorder:
    """Collects the exchanges of one doctor run; `label` names the check or probe running now."""

    def __init__(self, secrets: Callable[[], tuple[str, ...]]) -> None:
        self._secrets = secrets
        self.label = "checks"
        self.exchanges: list[dict[str, Any]] = []

    def session(self) -> requests.Session:
        """A requests session that records everything it sends (the client's transport seam)."""
        return _RecordingSession(self)

    def capture(self, request: requests.PreparedRequest, response: requests.Response) -> None:
        method = urlsplit(request.url or "").path.rstrip("/").rsplit("/", 1)[-1]
        secrets = self._secrets()
        self.exchanges.append({
            "seq": len(self.exchanges) + 1,
            "label": self.label,
            "method": method,
            "request": mask(_json_or_text(request.body), secrets),
            "status": response.status_code,
            "response": mask(_json_or_text(response.content), secrets),
        })

    def wait(self, seconds: float) -> None:
        """Note a pause, so a replay moves its clock the same way."""
        self.exchanges.append({"seq": len(self.exchanges) + 1, "label": self.label, "method": "wait",
                               "seconds": seconds})

    def write(self, folder: Path, manifest: dict[str, Any]) -> Path:
        """Write the exchanges and `manifest.json` into `folder` (created); returns the folder."""
        folder.mkdir(parents=True, exist_ok=True)
        names = []
        for exchange in self.exchanges:
            name = f"{exchange['seq']:04d}-{exchange['method']}.json"
            (folder / name).write_text(json.dumps(exchange, ensure_ascii=False, indent=1), encoding="utf-8")
            names.append(name)
        body = {"format": FORMAT, **mask(manifest, self._secrets()), "exchanges": names}
        text = json.dumps(body, ensure_ascii=False, indent=1)
        (folder / "manifest.json").write_text(text, encoding="utf-8")
        return folder


class _RecordingSession(requests.Session):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self._recorder = recorder

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().send(request, **kwargs)
        self._recorder.capture(request, response)
        return response


def load(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(manifest, exchanges in order) of a recorded directory; ValueError names what is wrong."""
    path = folder / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{folder}: no manifest.json (a `b24sync doctor --record DIR` folder is expected)")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}")
    exchanges = [json.loads((folder / name).read_text(encoding="utf-8")) for name in manifest["exchanges"]]
    return manifest, exchanges


def _json_or_text(body: Any) -> Any:
    if body is None:
        return None
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)
    try:
        return json.loads(text)
    except ValueError:
        return text
