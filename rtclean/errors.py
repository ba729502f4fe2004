"""Errors meant for the user: one clear line, no traceback.

The CLI catches these, prints ``rtclean: <message>`` and exits with ``exit_code``.
Anything else that escapes is a bug and keeps its traceback.
"""


class RtcleanError(Exception):
    """A problem the user can fix (bad input file, missing device, ...)."""

    exit_code = 1


class ConfigError(RtcleanError):
    """An invalid configuration. Exit status 2 so systemd does not restart-loop
    (the unit sets RestartPreventExitStatus=2)."""

    exit_code = 2


class SourceError(RtcleanError):
    """A capture source could not be opened or read."""


class ModelError(RtcleanError):
    """A detection model could not be loaded."""


def listen_error(service: str, host: str, port: int, e: OSError) -> RtcleanError:
    """One line for a server socket that cannot listen (port in use, host not
    an address of this machine, unknown name)."""
    import errno
    import os
    import socket

    if isinstance(e, socket.gaierror):
        reason = f"unknown host ({e.strerror})"
    elif e.errno is not None and e.errno > 0:
        reason = os.strerror(e.errno).lower()
    elif "could not bind on any address" in str(e):
        # Python 3.13's asyncio drops EADDRNOTAVAIL (host not an address of
        # this machine) and raises this errno-less message instead.
        reason = os.strerror(errno.EADDRNOTAVAIL).lower()
    else:
        reason = str(e)
    return RtcleanError(f"{service}: cannot listen on {host}:{port}: {reason}")
