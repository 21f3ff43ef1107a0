"""Writing files safely: atomic replacement, the user's umask, writability checks, stale temp files.

Every command that writes a result (checkpoints, retouched photos, exports, result pages) goes through here, so a
crash or Ctrl-C leaves either the previous file or the new one, never a truncated one, and a path that cannot be
written is reported before long work starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from gan_retouch.errors import GanRetouchError

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK)
# how torch.save reports a failed write ("unexpected pos": a short write, the OSError only in its context)
TORCH_WRITE_FAILED = ("file write failed", "No space left", "unexpected pos")
STALE_AFTER_S = 3600.0  # temp files older than this with no live owner are left-overs of a killed process
TEMP_NAME = re.compile(r"^\.(?P<name>.+?)(\.(?P<pid>\d+))?\.tmp(\.\w+)?$")


class OutputError(GanRetouchError):
    """A path that cannot be written (read-only folder, a file where a folder should be, no permission)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The permissions an ordinary new file gets here (0666 minus the umask), e.g. 0644."""
    return 0o666 & ~_umask()


def temp_path(final: Path, keep_suffix: bool = False) -> Path:
    """A hidden temp path beside ``final`` that names the owning process: ``.NAME.PID.tmp`` (+ ``.SUFFIX``).

    ``keep_suffix`` appends the final suffix again, for writers that pick the format from the extension.
    """
    extra = final.suffix if keep_suffix else ""
    return final.with_name(f"{TEMP_PREFIX}{final.name}.{os.getpid()}{TEMP_SUFFIX}{extra}")


def ensure_writable_dir(folder: str | Path, what: str) -> Path:
    """Create ``folder`` (and parents) and prove it is writable, or raise an OutputError that says why.

    Called before long work starts, so a read-only output folder is reported at once, not after training.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"{what} {folder} exists and is not a folder; choose another path") from exc
    except OSError as exc:
        raise OutputError(f"cannot create {what} {folder}: {exc.strerror or exc}; choose a writable path") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {folder} is not writable (permission denied); choose a writable path")
    probe = folder / f"{TEMP_PREFIX}write-probe.{os.getpid()}{TEMP_SUFFIX}"
    try:
        probe.write_bytes(b"")
    except OSError as exc:
        raise OutputError(f"{what} {folder} is not writable: {exc.strerror or exc}; choose a writable path") from exc
    finally:
        probe.unlink(missing_ok=True)
    return folder


def free_space(folder: Path) -> str:
    """The free space of the file system that holds ``folder``, for messages (e.g. ``312 MB``)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown space"
    return f"{free / 1e6:.1f} MB" if free < 1e10 else f"{free / 1e9:.0f} GB"


def write_failure(exc: BaseException) -> str | None:
    """Why a write failed, when ``exc`` is a failed write (an OSError with an errno, or torch.save's
    "file write failed" / "unexpected pos" RuntimeError, which holds the OSError in its context when there was
    one); None for other exceptions, which are bugs and propagate unchanged."""
    if isinstance(exc, RuntimeError) and any(text in str(exc) for text in TORCH_WRITE_FAILED):
        context = exc.__cause__ or exc.__context__
        if isinstance(context, OSError) and context.errno is not None:
            return write_failure(context)
        return "the write failed (a full disk is the usual cause)"
    if isinstance(exc, OSError) and exc.errno is not None:
        return "no space left on the device" if exc.errno in DISK_FULL else (exc.strerror or str(exc))
    return None


def publish_new(temp: Path, final: Path) -> None:
    """Give the finished file ``temp`` the name ``final`` only if no file has it: FileExistsError otherwise, even
    when another process creates ``final`` between a check and this call (a hard link never replaces a name)."""
    try:
        os.link(temp, final)
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
        os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # claim the name, then fill it
        os.replace(temp, final)
        return
    temp.unlink()


@contextlib.contextmanager
def staged_path(final: str | Path, keep_suffix: bool = False, replace: bool = True) -> Iterator[Path]:
    """A temp path beside ``final`` for a writer that wants a file name (ONNX, TorchScript, a folder of files).

    The temp is renamed onto ``final`` when the block succeeds and removed when it fails. A failed write (a full
    disk above all) is an OutputError naming ``final`` and the free space; the previous ``final`` is untouched.
    ``replace=False`` never replaces an existing ``final``: a FileExistsError, even when another process wrote it
    while this one worked.
    """
    final = Path(final)
    ensure_writable_dir(final.parent, "output folder")
    temp = temp_path(final, keep_suffix)
    try:
        yield temp
        if temp.is_file():
            os.chmod(temp, file_mode())
        if replace:
            os.replace(temp, final)
        else:
            publish_new(temp, final)
    except FileExistsError:
        raise
    except (OSError, RuntimeError) as exc:
        reason = write_failure(exc)
        if reason is None:
            raise
        kept = f"the previous {final.name} is unchanged" if final.exists() else "nothing was written"
        raise OutputError(f"cannot write {final}: {reason} ({free_space(final.parent)} free in {final.parent}); "
                          f"{kept}. Free some space (or choose another folder) and run the command again") from exc
    finally:
        if temp.is_file():
            temp.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None] | bytes, replace: bool = True) -> Path:
    """Write ``path`` atomically: a temp file in the same folder, fsync, the usual permissions, then rename.

    ``write`` is either the bytes to write or a function that writes into the open binary stream. ``replace=False``
    raises FileExistsError rather than replace a file that exists when the write ends (``publish_new``).
    """
    path = Path(path)
    with staged_path(path, replace=replace) as temp:
        with temp.open("wb") as stream:
            if isinstance(write, (bytes, bytearray)):
                stream.write(write)
            else:
                write(stream)
            stream.flush()
            os.fsync(stream.fileno())
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temp files and folders left in ``folder`` by processes that died mid-write (e.g. SIGKILL: a
    checkpoint, a `prepare` output, a `test` page); returns them.

    A temp entry is stale when the process named in it is gone, or (for names without a pid) when it is older
    than an hour. Temp entries of live processes are never touched.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for candidate in folder.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}*"):
        match = TEMP_NAME.match(candidate.name)
        if match is None or candidate.is_symlink():
            continue
        if match["pid"]:
            stale = not _pid_alive(int(match["pid"]))
        else:
            stale = time.time() - candidate.stat().st_mtime > STALE_AFTER_S
        if stale and candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
        elif stale and candidate.is_file():
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed
