"""Reading clips: sparse frame sampling, decoding (decord, PyAV as a fallback), resize/crop.

Layout: a clip is ``float32 (T, 3, H, W)``, RGB in ``[0, 1]`` (see docs/design.md);
normalisation happens inside the encoders.

Sampling follows the field: the video is cut into T equal segments and one frame
is taken per segment, a random one in training and the segment's middle in
evaluation. Training adds a light augmentation: a random crop of 80-100% of the
area and a small brightness/contrast jitter. There is no horizontal flip by
default, because captions and questions talk about "left" and "right".
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from evilm.config import ConfigError
from evilm.data.records import DataError

Backend = Literal["auto", "decord", "pyav"]


class VideoReadError(DataError):
    """A video is missing or cannot be decoded."""


@dataclass
class FrameConfig:
    num_frames: int = 4
    image_size: int = 128
    backend: Backend = "auto"  # "auto": decord, then PyAV for files decord cannot open
    crop_scale: tuple[float, float] = (0.8, 1.0)  # training: area fraction of the random crop
    brightness: float = 0.1  # training: +-10% brightness jitter
    contrast: float = 0.1  # training: +-10% contrast jitter
    hflip: bool = False  # off: a flip would swap "left" and "right" in the text
    # Evaluation-mode clips are decoded once into this folder (uint8 .npy files) and read back from
    # there by every later stage; None: no disk cache. How, not what: cached or not, a clip is the same.
    cache_dir: str | None = None

    def __post_init__(self):
        if self.num_frames < 1:
            raise ConfigError("num_frames", f"must be >= 1, got {self.num_frames}")
        if self.image_size < 8:
            raise ConfigError("image_size", f"must be >= 8, got {self.image_size}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError("crop_scale", f"needs 0 < low <= high <= 1, got {self.crop_scale}")


def sample_frame_indices(
    num_total: int, num_frames: int, train: bool, rng: np.random.Generator | None = None
) -> np.ndarray:
    """One frame index per equal segment: random within it (train) or its middle (eval).

    With fewer frames than segments, neighbouring segments share frames.
    """
    if num_total < 1:
        raise VideoReadError("the video has no frames")
    edges = np.linspace(0.0, float(num_total), num_frames + 1)
    starts, ends = edges[:-1], edges[1:]
    if train:
        rng = rng if rng is not None else np.random.default_rng()
        points = starts + rng.random(num_frames) * (ends - starts)
    else:
        points = (starts + ends) / 2.0
    return np.clip(np.floor(points).astype(np.int64), 0, num_total - 1)


# --- decoding ----------------------------------------------------------------------------------

_decord_quiet = False
_stderr_lock = threading.Lock()
_stderr_capture: tuple[int, Any] | None = None  # (process id, file): one per process, reused
# what FFmpeg ("[h264 @ 0x...]") and decord's C++ logging ("[12:00:00] .../video_reader.cc:83: ...") print
_NATIVE_LOG_LINE = re.compile(r"^\[(\d\d:\d\d:\d\d|[^\]]+ @ 0x[0-9a-f]+)\] ")


def _empty_capture_file() -> Any:
    global _stderr_capture
    if _stderr_capture is None or _stderr_capture[0] != os.getpid():  # a forked worker makes its own
        _stderr_capture = (os.getpid(), tempfile.TemporaryFile())
    handle = _stderr_capture[1]
    handle.seek(0)
    handle.truncate()
    return handle


@contextmanager
def _native_stderr_captured():
    """Collect the lines native code writes to the process's stderr into the yielded list.

    decord's C++ code logs to file descriptor 2 whatever its log level says; its lines belong in
    the error message of a file that does not open, not on the console. Other lines written
    meanwhile are passed on.
    """
    lines: list[str] = []
    with _stderr_lock:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr to capture
            yield lines
            return
        capture = _empty_capture_file()
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True):
                if _NATIVE_LOG_LINE.match(line):
                    lines.append(line.strip())
                else:
                    os.write(2, line.encode())


def _read_decord(path: Path, num_frames: int, train: bool, rng) -> np.ndarray:
    global _decord_quiet
    import decord

    if not _decord_quiet:  # hide FFmpeg's own chatter on broken files; errors still raise
        decord.logging.set_level(decord.logging.QUIET)
        _decord_quiet = True
    error = None
    with _native_stderr_captured() as logged:
        try:
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
            indices = sample_frame_indices(len(reader), num_frames, train, rng)
            frames = reader.get_batch(indices.tolist()).asnumpy()
        except Exception as err:  # decord raises several types; the caller names the file
            error = err
    if error is None:
        return frames
    detail = f" [{' | '.join(logged)[:200]}]" if logged else ""
    raise VideoReadError(f"{str(error).strip()[:200]}{detail}") from None


def _pyav_packets(container) -> tuple[list, int]:
    """The video stream's packets, demuxed to the end of the file, and the number of frames among them.

    The count is of the frames whose data is in the file, not the header's count, which a file cut
    short overstates (decord counts the frames present too, so both backends sample from the same
    frames). A packet cut short makes the file unreadable, as it is for decord.
    """
    stream = container.streams.video[0]
    stream.thread_count = 1
    packets = list(container.demux(stream))  # the last one, empty, flushes the decoder
    count = 0
    for packet in packets:
        if packet.size:
            if packet.is_corrupt:
                raise VideoReadError(f"frame {count} is cut short or corrupt (a truncated file?)")
            count += 1
    return packets, count


def _decode_packets(packets: list, indices: np.ndarray) -> tuple[dict[int, np.ndarray], int]:
    """The frames at ``indices`` and the number of frames decoded (all there are if the stream ends first)."""
    wanted, last = set(indices.tolist()), int(indices.max())
    kept: dict[int, np.ndarray] = {}
    decoded = 0
    for packet in packets:
        for frame in packet.decode():
            if decoded in wanted:
                kept[decoded] = frame.to_ndarray(format="rgb24")
            decoded += 1
            if decoded > last:
                return kept, decoded
    return kept, decoded


def _read_pyav(path: Path, num_frames: int, train: bool, rng) -> np.ndarray:
    import av

    state = None if rng is None else rng.bit_generator.state
    with av.open(str(path)) as container:
        packets, num_total = _pyav_packets(container)
        indices = sample_frame_indices(num_total, num_frames, train, rng)
        kept, decoded = _decode_packets(packets, indices)
    if len(kept) < len(set(indices.tolist())):
        # fewer pictures decode than there are packets (e.g. packets that show nothing): sample again,
        # with the same random draw, from the frames that exist instead of repeating the last one
        if rng is not None:
            rng.bit_generator.state = state
        indices = sample_frame_indices(decoded, num_frames, train, rng)
        with av.open(str(path)) as container:
            kept, _ = _decode_packets(_pyav_packets(container)[0], indices)
        if len(kept) < len(set(indices.tolist())):
            raise VideoReadError(f"only {len(kept)} of the sampled frames decode")
    return np.stack([kept[i] for i in indices.tolist()])


def read_frames(
    path: str | Path,
    num_frames: int,
    train: bool = False,
    rng: np.random.Generator | None = None,
    backend: Backend = "auto",
) -> np.ndarray:
    """Decode ``num_frames`` sparsely sampled frames: ``uint8 (T, H, W, 3)`` RGB.

    Raises ``VideoReadError`` naming the file for a missing or undecodable video. With
    ``backend="auto"``, decord reads the file and PyAV takes over where decord cannot; GIFs,
    which decord cannot open, go to PyAV directly.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: video file is empty")
    readers = {"decord": [_read_decord], "pyav": [_read_pyav], "auto": [_read_decord, _read_pyav]}
    if backend not in readers:
        raise DataError(f"unknown video backend {backend!r}; use 'auto', 'decord' or 'pyav'")
    chosen = [_read_pyav] if backend == "auto" and path.suffix.lower() == ".gif" else readers[backend]
    errors = []
    for read in chosen:
        # the same random draw for every backend, so a fallback reads the same frames
        state = None if rng is None else rng.bit_generator.state
        try:
            frames = read(path, num_frames, train, rng)
        except Exception as err:  # decoders raise many types; all mean "unreadable"
            if rng is not None:
                rng.bit_generator.state = state
            errors.append(f"{read.__name__.removeprefix('_read_')}: {str(err).strip()[:400]}")
            continue
        if frames.ndim != 4 or frames.shape[0] != num_frames or frames.shape[-1] != 3:
            errors.append(f"unexpected decoded shape {frames.shape}")
            continue
        return frames
    raise VideoReadError(f"{path}: cannot decode video ({'; '.join(errors)})")


# --- resize, crop, augmentation ----------------------------------------------------------------


def _random_crop_box(height: int, width: int, scale: tuple[float, float], rng) -> tuple[int, int, int, int]:
    """A crop of ``scale`` of the area with aspect ratio in [3/4, 4/3]: (top, left, h, w)."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        log_ratio = rng.uniform(math.log(3 / 4), math.log(4 / 3))
        ratio = math.exp(log_ratio)
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def transform_clip(
    frames: np.ndarray, cfg: FrameConfig, train: bool, rng: np.random.Generator | None = None
) -> torch.Tensor:
    """``uint8 (T, H, W, 3)`` -> ``float32 (T, 3, S, S)`` in [0, 1], S = ``cfg.image_size``.

    Eval: resize the short side to S and take the centre square. Train: a random
    crop (the same box for every frame), resized to S, then a brightness/contrast jitter.
    """
    height, width = frames.shape[1:3]
    size = cfg.image_size
    if train:
        rng = rng if rng is not None else np.random.default_rng()
        top, left, h, w = _random_crop_box(height, width, cfg.crop_scale, rng)
        frames = frames[:, top : top + h, left : left + w]  # crop the bytes before any float work
        flip = cfg.hflip and rng.random() < 0.5
        brightness = float(rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)) if cfg.brightness > 0 else 1.0
        contrast = float(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)) if cfg.contrast > 0 else 1.0
    clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    h, w = clip.shape[-2:]
    if train:
        if (h, w) != (size, size):
            clip = F.interpolate(clip, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        if flip:
            clip = clip.flip(-1)
        # brightness b then contrast c around each frame's mean m, with the /255, as one affine map:
        # c * (b x / 255 - b m / 255) + b m / 255
        mean = clip.mean(dim=(1, 2, 3), keepdim=True)
        scale = brightness * contrast / 255.0
        clip = clip.mul_(scale).add_(mean * (brightness * (1 - contrast) / 255.0)).clamp_(0.0, 1.0)
    else:
        if (h, w) != (size, size):
            ratio = size / min(h, w)
            new_h, new_w = max(size, round(h * ratio)), max(size, round(w * ratio))
            clip = F.interpolate(clip, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
            top, left = (new_h - size) // 2, (new_w - size) // 2
            clip = clip[:, :, top : top + size, left : left + size]
        # Back on the uint8 grid (bilinear resampling can overshoot a little): an evaluation clip is then
        # exactly what the in-memory and disk caches store, so caching never changes a result.
        clip = clip.round_().clamp_(0.0, 255.0).div_(255.0)
    return clip.contiguous()


def load_clip(
    path: str | Path, cfg: FrameConfig, train: bool = False, rng: np.random.Generator | None = None
) -> torch.Tensor:
    """Read and transform one clip: ``float32 (T, 3, S, S)`` in [0, 1].

    Evaluation-mode clips come from ``cfg.cache_dir`` when it is set (and are written there on a miss).
    """
    if cfg.cache_dir is not None and not train:
        return _cached_eval_clip(Path(path), cfg)
    frames = read_frames(path, cfg.num_frames, train=train, rng=rng, backend=cfg.backend)
    return transform_clip(frames, cfg, train=train, rng=rng)


def frame_cache_file(path: Path, cfg: FrameConfig) -> Path:
    """Where the evaluation clip of ``path`` under ``cfg`` is cached: keyed by the file (its absolute path,
    size and modification time, so a replaced video is decoded again) and by the frame settings."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{cfg.num_frames}|{cfg.image_size}|{cfg.backend}"
    digest = hashlib.sha1(key.encode()).hexdigest()
    return Path(cfg.cache_dir) / digest[:2] / f"{digest}.npy"


def _cached_eval_clip(path: Path, cfg: FrameConfig) -> torch.Tensor:
    if not path.is_file():  # the reader names the problem
        read_frames(path, cfg.num_frames, backend=cfg.backend)
    file = frame_cache_file(path, cfg)
    shape = (cfg.num_frames, 3, cfg.image_size, cfg.image_size)
    try:
        stored = np.load(file)
        if stored.shape == shape and stored.dtype == np.uint8:
            return torch.from_numpy(stored).float().div_(255.0)
    except (OSError, ValueError, EOFError):  # not cached yet (or unreadable): decode again
        pass
    clip = transform_clip(read_frames(path, cfg.num_frames, backend=cfg.backend), cfg, train=False)
    stored = clip.mul(255.0).round_().to(torch.uint8).numpy()
    file.parent.mkdir(parents=True, exist_ok=True)
    # write then rename: a reader (another stage, another rank) never sees half a file
    tmp = file.with_name(f"{file.stem}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, stored)
    os.replace(tmp, file)
    return torch.from_numpy(stored).float().div_(255.0)
