"""Error types that the CLI reports as a clean message (no traceback), with exit status 2."""


class GanRetouchError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""

    exit_code = 2  # the command's exit status


class ConfigError(GanRetouchError):
    """Bad option, recipe or command-line override."""


class DataError(GanRetouchError):
    """Missing, corrupt or mismatched images."""


class CheckpointError(GanRetouchError):
    """Unreadable checkpoint, or one made for another architecture or purpose."""
