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
