"""Hand-offs between threads that never block the producer.

- ``Mailbox``: holds only the latest item (live view, input of the detector).
  A new item replaces an unread one; the replaced item is counted as dropped.
- ``DropOldestQueue``: a FIFO bounded in *seconds of video* (recorders).
  When full, the oldest item is discarded and counted: a stalled encoder loses
  old frames, it never delays capture or the live view.

Both are closed with ``close()``; a consumer then drains what is left and gets
``None``.

- ``MailboxWorker``: the base of the optional outputs (HDMI display, RTP):
  one thread fed through a ``Mailbox``, so a slow output drops frames
  (counted) instead of holding up the processing thread.
"""

from __future__ import annotations

import collections
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._seq = 0  # number of items ever put
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._seq += 1
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """Take the latest item, waiting up to ``timeout``; None on timeout or close."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def peek(self) -> tuple[int, T | None]:
        """(sequence number, latest item) without taking it: for many readers."""
        with self._cond:
            return self._seq, self._item

    def wait_newer(self, seq: int, timeout: float | None = None) -> tuple[int, T | None]:
        """Wait until an item newer than ``seq`` was put; for readers that share it."""
        with self._cond:
            if self._seq <= seq and not self._closed:
                self._cond.wait_for(lambda: self._seq > seq or self._closed, timeout)
            return self._seq, self._item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class DropOldestQueue(Generic[T]):
    """FIFO holding at most ``max_items``; put() never blocks."""

    def __init__(self, max_items: int) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self.max_items = max_items
        self._dq: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.high_water = 0

    def put(self, item: T) -> None:
        with self._cond:
            if self._closed:
                self.dropped += 1
                return
            if len(self._dq) >= self.max_items:
                self._dq.popleft()
                self.dropped += 1
            self._dq.append(item)
            self.high_water = max(self.high_water, len(self._dq))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> T | None:
        """Next item; None when closed and drained (or on timeout)."""
        with self._cond:
            if not self._dq and not self._closed:
                self._cond.wait_for(lambda: self._dq or self._closed, timeout)
            return self._dq.popleft() if self._dq else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._dq)


class MailboxWorker(Generic[T]):
    """One consumer thread fed through a latest-only ``Mailbox``."""

    def __init__(self) -> None:
        self._box: Mailbox[T] = Mailbox()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def dropped(self) -> int:
        """Items replaced in the mailbox before the thread took them."""
        return self._box.dropped

    def _spawn(self, target, name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (it sees the closed mailbox) and wait for it."""
        self._closed = True
        self._box.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
