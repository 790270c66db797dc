"""Fetching a process's items on a producer thread while the caller translates and writes them.

`ItemStream` reads every item matching a filter with keyset paging (`start=-1`, `>id`, chained
pages in one `batch` from the very first request, so up to 2,500 items cost one request and no
separate head page) and hands them over in chunks through a bounded queue: while the caller writes
chunk k to SQLite, the thread is already waiting on the HTTP answer for chunk k+1. Memory stays
flat: at most `depth` chunks wait in the queue, plus the one being built and the one being written,
and at most two batches sent ahead of the one being read (`connector/rest/ahead.py`).

The stream also keeps what the pull needs besides the items:
- `time` / `local_time`: the first response's `time` object (the cursor is its `date_start`) and the
  local clock at the middle of that first request (for the portal-local clock offset);
- `seen_ids`: every item id read (when asked), so a full pull can find deletions without a second
  id-only scan.
Each chunk says whether it is the last, so the caller can advance the cursor in the transaction
that commits the last rows. An error on the thread is raised to the caller at its next chunk; a
caller that stops early (or fails) stops the thread before `with` returns.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from connector.constants import BATCH_MAX, PAGE_SIZE
from connector.crm.items import ProcessMap, check_item_stage, list_params
from connector.rest.paging import iter_list_pages

if TYPE_CHECKING:
    from connector.rest import Client

CHUNK = 5_000  # items per chunk handed to the writer (one transaction each in the pull)
FIRST_CHUNK = BATCH_MAX * PAGE_SIZE  # the first chunk: the items of the first request
DEPTH = 2  # chunks allowed to wait in the queue
_POLL = 0.1  # seconds between checks of the stop flag while the queue is full


@dataclass
class Chunk:
    """Items in portal id order; `last` marks the final chunk (possibly empty)."""

    items: list[dict[str, Any]]
    last: bool


@dataclass
class _Failed:
    error: BaseException


class _Stopped(Exception):
    """The caller left the stream: the producer thread ends quietly."""


class ItemStream:
    """Items of one process read on a thread, handed over in chunks (use as a context manager)."""

    def __init__(
        self,
        client: Client,
        pmap: ProcessMap,
        filter_: dict[str, Any],
        *,
        chunk: int = CHUNK,
        depth: int = DEPTH,
        collect_ids: bool = False,
    ) -> None:
        if chunk < 1 or depth < 1:
            raise ValueError(f"chunk and depth must be at least 1; got chunk={chunk}, depth={depth}")
        self.client, self.pmap, self.filter = client, pmap, dict(filter_)
        self.chunk = chunk
        self.time: dict[str, Any] = {}
        self.local_time: float = time.time()
        self.seen_ids: set[int] | None = set() if collect_ids else None
        self._queue: queue.Queue[Chunk | _Failed] = queue.Queue(maxsize=depth)
        self._first = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=f"fetch-{pmap.code}", daemon=True)
        self._done = False

    # ---- the caller's side ----

    def __enter__(self) -> ItemStream:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the producer (if still running) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=_POLL)  # unblock a producer waiting on a full queue
            except queue.Empty:
                pass
        self._thread.join()

    def first_response(self) -> tuple[dict[str, Any], float]:
        """Wait for the first answer: its `time` object and the local clock at mid-request.

        Returns `({}, now)` if the scan failed before any answer; the error then comes with the
        first chunk.
        """
        while not self._first.wait(_POLL):
            if not self._thread.is_alive():
                break
        return dict(self.time), self.local_time

    def __iter__(self) -> Iterator[Chunk]:
        while not self._done:
            try:
                got = self._queue.get(timeout=_POLL)
            except queue.Empty:
                if self._thread.is_alive() or not self._queue.empty():
                    continue
                raise RuntimeError("the fetch thread ended without handing over all items") from None
            if isinstance(got, _Failed):
                self._done = True
                raise got.error
            self._done = got.last
            yield got

    # ---- the producer thread ----

    def _produce(self) -> None:
        sent = time.time()

        def on_time(answer_time: dict[str, Any]) -> None:
            if not self._first.is_set():
                self.time = dict(answer_time or {})
                self.local_time = (sent + time.time()) / 2
                self._first.set()

        try:
            rows = iter_list_pages(
                self.client, "crm.item.list", list_params(self.pmap, self.filter), "items", "id",
                BATCH_MAX, batch_first=True, on_time=on_time,
            )
            buffer: list[dict[str, Any]] = []
            ids = self.seen_ids
            size = min(self.chunk, FIRST_CHUNK)  # the writer starts after one request, not two
            for item in rows:
                if len(buffer) >= size:  # full, and more follow: not the last chunk
                    self._put(Chunk(buffer, last=False))
                    buffer, size = [], self.chunk
                check_item_stage(item, self.pmap, "crm.item.list")
                buffer.append(item)
                if ids is not None:
                    ids.add(_item_id(item))
            self._first.set()
            self._put(Chunk(buffer, last=True))
        except _Stopped:
            return
        except BaseException as exc:  # handed to the caller, raised there
            self._first.set()
            try:
                self._put(_Failed(exc))
            except _Stopped:
                return

    def _put(self, entry: Chunk | _Failed) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                self._queue.put(entry, timeout=_POLL)
                return
            except queue.Full:
                continue


def _item_id(item: dict[str, Any]) -> int:
    """The item's id (the keyset scan has checked every page carries one); 0 if not a number."""
    try:
        return int(item["id"])
    except (KeyError, TypeError, ValueError):
        return 0
