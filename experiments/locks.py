"""One process at a time per stage: a file lock beside the stage's output folder.

Local workers that share a runs folder (``python -m experiments sweep ... --worker`` twice on one
machine) can plan the same stage at once. The runner holds ``runs/<stage_id>.lock`` while a stage
runs; a second process wanting that stage waits, then finds the finished run and reuses it. The
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
