"""Keyset batches sent ahead: batch k+1 leaves as soon as batch k's bytes arrive, before k is decoded.

A keyset scan is a chain: batch k+1 filters on the last id of batch k. Decoding a 1.7 MB answer and
checking its 2,500 rows takes the client 10-25 ms, and the portal would sit idle meanwhile. The last
id of a full batch is read from the raw answer instead: `"p49":{"items":[` can occur only once, as
the last page's rows (inside a JSON string every quote is escaped, so the text cannot hide there),
so that page alone is decoded, and the next batch leaves on a worker thread while this one is
decoded and checked.

The guess is only a head start. The scan still decodes and checks every batch, and takes a batch sent
ahead only if it was sent with the very last id the scan decoded; any other is dropped and the right
one sent (a wrong guess costs one read request, never a wrong row). At most `AHEAD` batches wait
or travel beyond the one being read, so memory stays bounded; `close()` waits for every batch still
travelling, so no request outlives the scan.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from connector.constants import PAGE_SIZE

if TYPE_CHECKING:
    from .client import Client, Command
    from .models import BatchResult

AHEAD = 2  # batches sent and not yet taken by the scan, at most
_DECODER = json.JSONDecoder()


def last_id_in(body: bytes, label: str, key: str | None, ident: str) -> Any:
    """The last row id of page `label` if, in the raw batch answer, that page is full; else None."""
    head = f'"{label}":'.encode()
    marker = head + (b'{"' + key.encode() + b'":[' if key else b"[")
    at = body.rfind(marker)
    if at < 0 or body.find(marker) != at:
        return None
    try:
        page, _ = _DECODER.raw_decode(body[at + len(head):].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    rows = page.get(key) if key and isinstance(page, dict) else page
    if not isinstance(rows, list) or len(rows) != PAGE_SIZE or not isinstance(rows[-1], dict):
        return None
    last = rows[-1].get(ident)
    return last if isinstance(last, int | str) and not isinstance(last, bool) else None


class BatchChain:
    """The batches of one keyset scan, each sent as soon as the id it filters on is known."""

    def __init__(self, client: Client, build: Callable[[Any], Mapping[str, Command]], last_label: str,
                 key: str | None, ident: str) -> None:
        self.client, self.build = client, build
        self.last_label, self.key, self.ident = last_label, key, ident
        # AHEAD batches travelling or waiting, and the one being decoded
        self._pool = ThreadPoolExecutor(max_workers=AHEAD + 1, thread_name_prefix="keyset")
        self._lock = threading.Lock()
        # batches sent and not taken: the id each filters on -> (the id of the batch its id came from, answer)
        self._sent: dict[Any, tuple[Any, Future[BatchResult]]] = {}
        self._dropped: list[Future[BatchResult]] = []  # sent on a wrong guess: waited for by close()
        self._held: dict[Any, Any] = {}  # guesses not sent while AHEAD batches were out, by their batch
        self._closed = False

    def take(self, after: Any) -> BatchResult:
        """The batch of the pages after `after`: the one sent ahead with it, or one sent now.

        Batches sent ahead stay only if they descend from this one (their ids came from its answer, or
        from a descendant's); any other was sent on a wrong guess and is dropped. The slot this batch
        frees goes to a guess held back while AHEAD batches were out.
        """
        with self._lock:
            entry = self._sent.pop(after, None)
            kept: dict[Any, tuple[Any, Future[BatchResult]]] = {}
            parent = after
            while child := next((k for k, (p, _) in self._sent.items() if p == parent), None):
                kept[child] = self._sent.pop(child)
                parent = child
            self._dropped.extend(future for _, future in self._sent.values())
            self._sent = kept
            held = self._held.get(parent)
            self._held.clear()
            if held is not None and held not in kept and len(kept) < AHEAD and not self._closed:
                kept[held] = (parent, self._submit(held))
        future = entry[1] if entry is not None else self._submit(after)
        return future.result()

    def send_after(self, batch: BatchResult, after: Any) -> None:
        """Send the batch that follows `batch` (read after `after`) now, if its last page is full and that
        batch has not left yet.

        The id is taken before the scan checks the batch's pages: if they fail the check, the scan ends
        with an error and `close()` waits for this batch, whose answer is dropped.
        """
        rows = batch.results.get(self.last_label)
        if self.key is not None:
            rows = rows.get(self.key) if isinstance(rows, dict) else None
        if not isinstance(rows, list) or len(rows) != PAGE_SIZE or not isinstance(rows[-1], dict):
            return
        last = rows[-1].get(self.ident)
        if isinstance(last, int | str) and not isinstance(last, bool):  # junk: the page checks refuse it
            self._send(last, after, limit=False)

    def close(self) -> None:
        """Wait for every batch still travelling (their answers are dropped), then stop the workers."""
        with self._lock:
            self._closed = True
            left = [*(future for _, future in self._sent.values()), *self._dropped]
            self._sent = {}
        for future in left:
            future.exception()
        self._pool.shutdown(wait=True)

    def _send(self, after: Any, parent: Any, *, limit: bool) -> None:
        with self._lock:
            if self._closed or after is None or after in self._sent:
                return
            if limit and len(self._sent) >= AHEAD:
                self._held[parent] = after
                return
            self._sent[after] = (parent, self._submit(after))

    def _submit(self, after: Any) -> Future[BatchResult]:
        return self._pool.submit(self.client.batch, self.build(after), True, peek=partial(self._peek, after))

    def _peek(self, after: Any, body: bytes) -> None:
        """On a worker, with the raw bytes of the batch read after `after`: send the next if its id shows."""
        self._send(last_id_in(body, self.last_label, self.key, self.ident), after, limit=True)
