"""The hand-offs that keep capture from ever waiting on a consumer."""

from __future__ import annotations

import threading
import time

from rtclean.mailbox import DropOldestQueue, Mailbox


def test_mailbox_keeps_latest_and_counts_replaced():
    m: Mailbox[int] = Mailbox()
    for i in range(5):
        m.put(i)
    assert m.get(0) == 4
    assert m.dropped == 4
    assert m.get(0.01) is None


def test_mailbox_readers_share_without_taking():
    m: Mailbox[str] = Mailbox()
    m.put("a")
    seq, item = m.peek()
    assert (seq, item) == (1, "a")
    got = []
    t = threading.Thread(target=lambda: got.append(m.wait_newer(seq, timeout=5)))
    t.start()
    time.sleep(0.05)
    m.put("b")
    t.join(5)
    assert got == [(2, "b")]


def test_mailbox_close_wakes_waiter():
    m: Mailbox[int] = Mailbox()
    out = []
    t = threading.Thread(target=lambda: out.append(m.get(timeout=10)))
    t.start()
    time.sleep(0.05)
    m.close()
    t.join(2)
    assert not t.is_alive() and out == [None]


def test_queue_drops_oldest_and_never_blocks():
    q: DropOldestQueue[int] = DropOldestQueue(3)
    t0 = time.perf_counter()
    for i in range(10):
        q.put(i)
    assert time.perf_counter() - t0 < 0.5
    assert q.dropped == 7 and len(q) == 3 and q.high_water == 3
    assert [q.get(0), q.get(0), q.get(0)] == [7, 8, 9]


def test_queue_drains_after_close():
    q: DropOldestQueue[int] = DropOldestQueue(4)
    q.put(1)
    q.put(2)
    q.close()
    q.put(3)  # refused after close, counted
    assert q.dropped == 1
    assert [q.get(), q.get(), q.get()] == [1, 2, None]
