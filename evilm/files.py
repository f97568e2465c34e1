"""Files written whole or not at all: write under a temporary name beside the target, then rename.

A reader (another stage, a resumed run, a second worker) never sees half a file: ``os.replace``
is atomic on one file system. The temporary name carries the process id, so two processes
writing the same target do not clobber each other's temporary file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` for a temporary path beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    """JSON with sorted keys (the same data gives the same bytes)."""
    return atomic_write_text(path, json.dumps(data, indent=indent, sort_keys=True))


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` under a temporary name, then rename (torch is imported only here)."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))
