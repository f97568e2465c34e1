"""Where evaluation clips are decoded once for every stage (no torch here: stage presets name it)."""

from __future__ import annotations

from pathlib import Path

# The smoke/quick presets' disk cache of evaluation clips, inside the generated world's folder: every
# stage reads the clips decoded by the first. The paper presets leave it off (augmented frames, and a
# real data root may be read-only).
FRAME_CACHE = ".frame_cache"


def frame_cache_dir(setting: str | None, data_root: str | Path) -> str | None:
    """A stage's ``frame_cache`` setting as a folder: relative paths are taken under the data root
    (the generated world keeps its decoded clips beside its videos); None: no disk cache."""
    return None if setting is None else str(Path(data_root) / setting)
