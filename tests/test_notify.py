"""sd_notify against a real unix datagram socket bound by the test."""

from __future__ import annotations

import socket

from rtclean.service.notify import Notifier


def test_notifier_sends_datagrams(tmp_path):
    path = str(tmp_path / "n.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    n = Notifier(path)
    assert n.enabled
    assert n.ready("up")
    assert s.recv(100) == b"READY=1\nSTATUS=up"
    assert n.watchdog()
    assert s.recv(100) == b"WATCHDOG=1"
    s.close()
    assert n.status("gone") is False  # receiver gone: reported, not raised
    n.close()


def test_abstract_socket_and_disabled():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0rtclean-test-notify")
    s.settimeout(2)
    n = Notifier("@rtclean-test-notify")
    n.stopping()
    assert s.recv(100) == b"STOPPING=1"
    s.close()
    off = Notifier("")
    assert not off.enabled and off.ready() is False
