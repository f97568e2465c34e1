"""One process at a time per stage: a file lock beside the stage's output folder.

Local workers that share a runs folder (``python -m experiments sweep ... --worker`` twice on one
machine) can plan the same stage at once. The runner holds ``runs/<stage_id>.lock`` while a stage
runs; a second process wanting that stage waits, then finds the finished run and reuses it (the
runner tries ``try_lock`` and keeps its other lanes busy meanwhile; ``stage_lock`` blocks). The
lock is ``flock``: the kernel drops it when its holder exits or is killed, so a crash never leaves
a stale lock. The file sits beside the output folder, not in it, because a forced rerun deletes
the folder. (Workers on other machines have their own runs folders; the Optuna study keeps them
from running the same grid point.)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + ".lock")


class StageLock:
    """A held stage lock (``try_lock``); ``release`` frees it."""

    def __init__(self, handle):
        self._handle = handle

    def release(self) -> None:
        if self._handle is None:
            return
        self._handle.seek(0)
        self._handle.truncate()
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None


def try_lock(out_dir: Path) -> StageLock | str:
    """The lock of the stage whose outputs go to ``out_dir`` if it is free, else the holder's pid (text)."""
    path = lock_path(Path(out_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        return holder
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return StageLock(handle)


def is_locked(out_dir: Path) -> bool:
    """Whether a process holds the lock of ``out_dir``'s stage now (it is running)."""
    if not lock_path(Path(out_dir)).exists():
        return False
    held = try_lock(out_dir)
    if isinstance(held, StageLock):
        held.release()
        return False
    return True


@contextmanager
def stage_lock(out_dir: Path, stage_id: str, on_wait: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Hold the lock of the stage whose outputs go to ``out_dir``; while another process holds it,
    call ``on_wait`` with a message naming that process, and wait. Yields whether it waited (then
    the other process may have finished the stage: look again before running it)."""
    path = lock_path(Path(out_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        waited = False
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            f.seek(0)
            holder = f.read().strip() or "unknown"
            if on_wait is not None:
                on_wait(f"waiting for another process running stage {stage_id} (pid {holder})")
            fcntl.flock(f, fcntl.LOCK_EX)  # blocks until the holder finishes (or dies)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield waited
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
