"""Rendering the generated world's clips to H.264 files, in worker processes.

``render_clips`` draws every planned clip (``evilm.data.scenes.render_scene``) and encodes it
with libx264 through PyAV; the same frames always give the same bytes (see ``encode_mp4``).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from evilm.data.scenes import SceneSpec, render_scene


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """An RGB frame ``uint8 (H, W, 3)`` as planar YUV 4:2:0 ``uint8 (3H/2, W)`` (BT.601, limited range).

    Done here rather than by FFmpeg's swscale, whose SIMD paths depend on the CPU: numpy's float32
    arithmetic gives the same bytes on every x86 machine.
    """
    height, width = frame.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"4:2:0 needs an even frame size, got {width}x{height}")
    r, g, b = (frame[..., k].astype(np.float32) for k in range(3))
    y = 16 + 0.256788 * r + 0.504129 * g + 0.097906 * b
    u = 128 - 0.148223 * r - 0.290993 * g + 0.439216 * b
    v = 128 + 0.439216 * r - 0.367788 * g - 0.071427 * b

    def half(plane):
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8).reshape(-1) for p in (y, half(u), half(v))]
    return np.concatenate(planes).reshape(height * 3 // 2, width)


def encode_mp4(frames: np.ndarray, path: Path, fps: int, crf: int) -> None:
    """H.264 (libx264, yuv420p), one encoder thread, written under a temporary name first.

    The same frames give the same bytes: the colour conversion is ``rgb_to_yuv420p``, x264 runs one
    thread without its macroblock-tree lookahead, and every picture has its timestamp.
    """
    import av

    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # One thread and no macroblock-tree lookahead: with the lookahead, this x264 gave different
        # bytes for the same frames from one call to the next (tests/data/test_world_video.py).
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1",
                          "x264-params": "mbtree=0:rc-lookahead=0"}
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
            picture.pts = index
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)


def _render_batch(args: tuple[list[tuple[SceneSpec, str]], str, int, int, int, int]) -> int:
    jobs, root, frames, size, fps, crf = args
    for scene, rel_path in jobs:
        path = Path(root) / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        encode_mp4(render_scene(scene, frames, size), path, fps, crf)
    return len(jobs)


def render_clips(clips: list, root: Path, config) -> None:
    """Render and encode every clip, in ``config.workers`` processes, with a progress bar."""
    chunk = 16
    batches = [([(c.scene, c.rel_path) for c in clips[i : i + chunk]], str(root), config.frames, config.size,
                config.fps, config.crf) for i in range(0, len(clips), chunk)]
    bar = tqdm(total=len(clips), desc=f"generating {config.profile} world", unit="clip", disable=not config.progress)
    try:
        if config.workers == 1:
            for batch in batches:
                bar.update(_render_batch(batch))
        else:
            with ProcessPoolExecutor(max_workers=config.workers) as pool:
                for done in pool.map(_render_batch, batches):
                    bar.update(done)
    finally:
        bar.close()
