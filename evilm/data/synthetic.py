"""The generated video world as a set of benchmarks, written in the real data sets' formats.

``generate_world(config, root)`` renders every clip of every pool to H.264 mp4
(PyAV/libx264), writes each pool's annotations in its real data set's format
(WebVid CSV, MSR_VTT.json + jsfusion lists, MSRVTT-QA JSON, MSRVTT-MC JSONL,
MSVD-QA JSON + youtube_mapping.txt, TGIF-QA TSVs, DiDeMo JSON, HMDB51 split
files, Kinetics CSVs), and ``scenes.jsonl`` with each clip's ground truth. The
world is then read back through ``evilm.data.formats`` like real data.

Pools mirror the real data sets: MSRVTT retrieval, QA and MC share the MSRVTT
videos; every other benchmark has its own videos.

Everything is deterministic from ``seed``. The world lives in
``{root}/{profile}-{key}``, ``key`` a hash of every setting that changes its
content; it is generated in a temporary directory that is renamed into place
only when complete (``manifest.json`` inside marks completion), so an
interrupted generation is never mistaken for a world, and a finished one is
reused instantly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from evilm.config import ConfigError
from evilm.data import formats
from evilm.data.records import DataError, ObjectInfo, SceneInfo
from evilm.data.scenes import (
    ACTIONS,
    COLOURS,
    FINE_ACTIONS,
    LOCATIONS,
    REPEATABLE,
    SHAPES,
    SIZES,
    TEXTURES,
    SceneSpec,
    fine_action,
    keyed_rng,
    sample_scene,
)
from evilm.data.world_annotations import Context, write_annotations
from evilm.data.world_video import encode_mp4, render_clips  # noqa: F401 (encode_mp4: part of the API)
from evilm.processes import pid_alive
from evilm.stage import MetricsCallback, StageResult, report

GENERATOR_VERSION = 6  # bump when the output of the same settings changes


@dataclass
class PoolSizes:
    """Clips per pool, and how each splits. Class pools give clips per class.

    The quick sizes are set for power: each test split is large enough that two rows of a table
    differing by a few points can be told apart (>= 500 retrieval test videos, MC items and probe
    test clips, >= 1,000 test questions per QA benchmark; the calibration report prints the
    minimum detectable difference each gives).
    """

    webvid_train: int
    webvid_val: int
    msrvtt_train: int  # the "9k" list; the "7k" list is its first 3/4
    msrvtt_test: int  # the "1k-A" list (retrieval, MC and the QA test videos)
    msvd_train: int
    msvd_val: int
    msvd_test: int
    tgif_train: int  # repeated actions (Action), two in sequence (Transition), single: TGIF_KINDS
    tgif_test: int
    didemo_train: int
    didemo_val: int
    didemo_test: int
    hmdb_train_per_class: int
    hmdb_test_per_class: int
    k400_train_per_class: int
    k400_val_per_class: int


PROFILES: dict[str, dict] = {
    "smoke": dict(image_size=64, num_frames=8, sizes=PoolSizes(
        webvid_train=28, webvid_val=4, msrvtt_train=10, msrvtt_test=6, msvd_train=4, msvd_val=2, msvd_test=2,
        tgif_train=8, tgif_test=4, didemo_train=4, didemo_val=2, didemo_test=2,
        hmdb_train_per_class=1, hmdb_test_per_class=1, k400_train_per_class=1, k400_val_per_class=1)),
    "quick": dict(image_size=96, num_frames=16, sizes=PoolSizes(
        webvid_train=1900, webvid_val=100, msrvtt_train=600, msrvtt_test=500, msvd_train=300, msvd_val=30,
        msvd_test=170, tgif_train=3000, tgif_test=1000, didemo_train=1200, didemo_val=20, didemo_test=500,
        hmdb_train_per_class=30, hmdb_test_per_class=40, k400_train_per_class=100, k400_val_per_class=28)),
}
PROFILES["standard"] = dict(image_size=128, num_frames=16, sizes=PoolSizes(
    **{k: v * 4 for k, v in asdict(PROFILES["quick"]["sizes"]).items()}))

HMDB_CLASSES = list(ACTIONS)
K400_CLASSES = list(FINE_ACTIONS)


@dataclass
class WorldConfig:
    profile: Literal["smoke", "quick", "standard"] = "quick"
    seed: int = 0
    image_size: int | None = None  # None: the profile's (96 quick, 64 smoke)
    num_frames: int | None = None  # None: the profile's (16 quick, 8 smoke)
    fps: int = 8
    crf: int = 23  # libx264 quality (lower = better, bigger)
    scale: float = 1.0  # multiply every pool size
    # how, not what: these do not change the world and are not part of its key
    workers: int = 2
    progress: bool = True
    cache_root: str | None = None  # where worlds live; None: the stage's out_dir

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ConfigError("profile", f"{self.profile!r} is not one of {', '.join(PROFILES)}")
        if self.scale <= 0:
            raise ConfigError("scale", f"must be > 0, got {self.scale}")
        if self.workers < 1:
            raise ConfigError("workers", f"must be >= 1, got {self.workers}")

    @property
    def size(self) -> int:
        return self.image_size or PROFILES[self.profile]["image_size"]

    @property
    def frames(self) -> int:
        return self.num_frames or PROFILES[self.profile]["num_frames"]

    def pool_sizes(self) -> PoolSizes:
        base = asdict(PROFILES[self.profile]["sizes"])
        return PoolSizes(**{k: max(1, round(v * self.scale)) for k, v in base.items()})

    def content(self) -> dict:
        """The settings that determine the world's content (the cache key's input)."""
        return {"version": GENERATOR_VERSION, "profile": self.profile, "seed": self.seed, "image_size": self.size,
                "num_frames": self.frames, "fps": self.fps, "crf": self.crf, "sizes": asdict(self.pool_sizes())}


def world_key(config: WorldConfig) -> str:
    blob = json.dumps(config.content(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


# --- planning: every clip's scene, id and file, before any pixel -------------------------------


@dataclass
class Clip:
    pool: str
    split: str
    video_id: str
    rel_path: str  # relative to the world directory
    scene: SceneSpec
    kind: str = "single"  # single | sequence | repeat
    label: str = ""  # class pools
    extra: dict = field(default_factory=dict)


def _token(rng: np.random.Generator, n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") -> str:
    return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=n))


PRETRAIN_TWO_ACTIONS_PROB = 0.3  # pre-training scenes whose main object does two actions in sequence


def object_count(rng: np.random.Generator, weights=(0.5, 0.3, 0.2)) -> int:
    """Objects in a scene: 1, 2 or 3 (the default weights are the pre-training clips')."""
    return 1 + int(rng.choice(3, p=weights))


def balanced_counts(rng: np.random.Generator, n: int) -> list[int]:
    """Object counts 1, 2, 3 in equal shares, shuffled: for pools asked "how many objects?", whose answer
    the question must not give away (a draw per clip could leave one count far more common)."""
    counts = [1 + i % 3 for i in range(n)]
    return [counts[i] for i in rng.permutation(n)]


def _identity(scene: SceneSpec, fields: tuple[str, ...]) -> tuple:
    """What a retrieval query says about its clip's main object."""
    obj = scene.main_object
    return tuple(getattr(obj, f) if f != "actions" else tuple(obj.actions) for f in fields)


def _unique(draw, taken: set, fields: tuple[str, ...], tries: int = 200) -> SceneSpec:
    """A scene from ``draw()`` whose main object differs from every scene in ``taken`` in ``fields``, so
    that a test caption naming those fields has one right video."""
    for _ in range(tries):
        scene = draw()
        key = _identity(scene, fields)
        if key not in taken:
            taken.add(key)
            return scene
    raise RuntimeError(f"no unique scene in {tries} draws: the test split is too large for {fields}")


def _split(i: int, *sizes: int, names=("train", "val", "test")) -> str:
    for name, size in zip(names, sizes):
        if i < size:
            return name
        i -= size
    return names[len(sizes)]


def plan_webvid(config: WorldConfig, sizes: PoolSizes) -> list[Clip]:
    """WebVid-style pretraining: mixed scenes, a third with two actions in sequence."""
    rng, clips = keyed_rng(config.seed, "webvid"), []
    for i in range(sizes.webvid_train + sizes.webvid_val):
        video_id = str(1_000_000 + i * 7)
        page_dir = f"{(i // 50) * 50 + 1:06d}_{(i // 50) * 50 + 50:06d}"
        scene = sample_scene(rng, video_id, "webvid", config.frames, object_count(rng),
                             two_actions_prob=PRETRAIN_TWO_ACTIONS_PROB)
        clips.append(Clip("webvid", _split(i, sizes.webvid_train, names=("train", "val")), video_id,
                          f"webvid/videos/{page_dir}/{video_id}.mp4", scene, extra={"page_dir": page_dir}))
    return clips


def plan_msrvtt(config: WorldConfig, sizes: PoolSizes) -> list[Clip]:
    """MSRVTT videos (retrieval, open-ended QA and multiple choice); test clips unique in what captions say."""
    rng, clips, taken = keyed_rng(config.seed, "msrvtt"), [], set()
    fields = ("size", "colour", "texture", "shape", "actions")
    counts = balanced_counts(rng, sizes.msrvtt_train) + balanced_counts(rng, sizes.msrvtt_test)
    for i in range(sizes.msrvtt_train + sizes.msrvtt_test):
        video_id, split = f"video{i}", _split(i, sizes.msrvtt_train, names=("train", "test"))

        def draw(video_id=video_id, count=counts[i]):
            return sample_scene(rng, video_id, "msrvtt", config.frames, count, two_actions_prob=0.3)

        scene = _unique(draw, taken, fields) if split == "test" else draw()
        clips.append(Clip("msrvtt", split, video_id, f"msrvtt/videos/all/{video_id}.mp4", scene))
    return clips


def plan_msvd(config: WorldConfig, sizes: PoolSizes) -> list[Clip]:
    rng, clips = keyed_rng(config.seed, "msvd"), []
    counts = [c for n in (sizes.msvd_train, sizes.msvd_val, sizes.msvd_test) for c in balanced_counts(rng, n)]
    for i in range(sizes.msvd_train + sizes.msvd_val + sizes.msvd_test):
        name = f"{_token(rng, 11)}_{int(rng.integers(0, 200))}_{int(rng.integers(200, 400))}"
        scene = sample_scene(rng, name, "msvd", config.frames, counts[i], two_actions_prob=0.2)
        clips.append(Clip("msvd", _split(i, sizes.msvd_train, sizes.msvd_val), name, f"msvd/YouTubeClips/{name}.mp4",
                          scene, extra={"vid": i + 1}))
    return clips


# Shares of each split. Training has the most two-action clips: each action is seen in two frames,
# and the supervised ceiling (before it matched each option alone against the clip) stayed at chance
# when trained on 600 such clips; the test split keeps at least 500 Action items and 500 Transition
# items (two per clip).
TGIF_KINDS = {"train": (("repeat", 0.35), ("sequence", 0.55), ("single", 0.10)),
              "test": (("repeat", 0.5), ("sequence", 0.3), ("single", 0.2))}
# "does it N times": at most 3, because 4 cycles of a periodic action (a bounce, a blink) sampled at
# 4 evenly spaced frames land on the same point of every cycle and show a still object
TGIF_REPEATS = (2, 3)


def plan_tgif(config: WorldConfig, sizes: PoolSizes) -> list[Clip]:
    """Repeated actions (Action), two-action clips (Transition), all of them (FrameQA), in fixed shares of each
    split; the main object's start is spread evenly over the frame's five parts ("where is it?")."""
    rng, clips = keyed_rng(config.seed, "tgif"), []
    for split, n in (("train", sizes.tgif_train), ("test", sizes.tgif_test)):
        shares = TGIF_KINDS[split]
        counts = [round(share * n) for _, share in shares[:-1]]
        kinds = [k for (k, _), c in zip(shares, counts) for _ in range(c)]
        kinds += [shares[-1][0]] * (n - len(kinds))
        object_counts = balanced_counts(rng, n)
        for i, kind in enumerate(kinds):
            gif = f"tumblr_{_token(rng, 15)}o1_250"
            num_objects = object_counts[i]
            location = LOCATIONS[i % len(LOCATIONS)]
            if kind == "repeat":
                action = REPEATABLE[int(rng.integers(len(REPEATABLE)))]
                scene = sample_scene(rng, gif, "tgif", config.frames, num_objects, [action],
                                     repeats=int(rng.choice(TGIF_REPEATS)), location=location)
            else:
                scene = sample_scene(rng, gif, "tgif", config.frames, num_objects,
                                     two_actions_prob=1.0 if kind == "sequence" else 0.0, location=location)
            clips.append(Clip("tgif", split, gif, f"tgif/gifs/{gif}.mp4", scene, kind=kind))
    return clips


def plan_didemo(config: WorldConfig, sizes: PoolSizes) -> list[Clip]:
    """Mostly two moments per video; test clips unique in what their descriptions say."""
    rng, clips, taken = keyed_rng(config.seed, "didemo"), [], set()
    for i in range(sizes.didemo_train + sizes.didemo_val + sizes.didemo_test):
        name = (f"{int(rng.integers(10**7, 10**8))}@N0{int(rng.integers(10))}_{int(rng.integers(10**10, 10**11))}_"
                f"{_token(rng, 10, '0123456789abcdef')}")
        split = _split(i, sizes.didemo_train, sizes.didemo_val)

        def draw(name=name):
            return sample_scene(rng, name, "didemo", config.frames, object_count(rng, (0.6, 0.3, 0.1)),
                                two_actions_prob=0.75)

        scene = _unique(draw, taken, ("colour", "shape", "actions")) if split == "test" else draw()
        clips.append(Clip("didemo", split, name, f"didemo/videos/{name}.mp4", scene))
    return clips


def plan_hmdb51(config: WorldConfig, sizes: PoolSizes) -> list[Clip]:
    """HMDB51-style probe: the coarse action classes, the same number of clips each."""
    rng, clips = keyed_rng(config.seed, "hmdb51"), []
    per = sizes.hmdb_train_per_class + sizes.hmdb_test_per_class
    for label in HMDB_CLASSES:
        for k in range(per):
            name = f"{_token(rng, 8)}_{label}_u_nm_np1_fr_med_{k}"
            scene = sample_scene(rng, name, "hmdb51", config.frames, object_count(rng, (0.6, 0.3, 0.1)), [label])
            split = "train" if k < sizes.hmdb_train_per_class else "test"
            clips.append(Clip("hmdb51", split, name, f"hmdb51/videos/{label}/{name}.mp4", scene, label=label))
    return clips


def plan_k400(config: WorldConfig, sizes: PoolSizes) -> list[Clip]:
    """Kinetics-style probe: finer classes (rotation sense, entry and exit side), balanced."""
    rng, clips = keyed_rng(config.seed, "k400"), []
    per = sizes.k400_train_per_class + sizes.k400_val_per_class
    for label in K400_CLASSES:
        action, _, detail = label.partition("_") if label.startswith(("rotate_", "enter_", "leave_")) else (
            label, "", "")
        for k in range(per):
            youtube_id, start = _token(rng, 11), int(rng.integers(0, 300))
            name = formats.kinetics_file_name(youtube_id, start, start + 10)
            split = "train" if k < sizes.k400_train_per_class else "val"
            for _ in range(100):  # resample until the detail matches the class
                scene = sample_scene(rng, name, "k400", config.frames, object_count(rng, (0.6, 0.3, 0.1)), [action])
                if not detail or fine_action(scene.main_object) == label:
                    break
            clips.append(Clip("k400", split, name.removesuffix(".mp4"), f"k400/videos/{split}/{label}/{name}",
                              scene, label=label, extra={"youtube_id": youtube_id, "start": start}))
    return clips


POOL_PLANNERS = [plan_webvid, plan_msrvtt, plan_msvd, plan_tgif, plan_didemo, plan_hmdb51, plan_k400]


def plan_world(config: WorldConfig) -> list[Clip]:
    """Every clip's scene, id and file, before any pixel (each pool from its own keyed generator)."""
    sizes = config.pool_sizes()
    clips = [clip for plan in POOL_PLANNERS for clip in plan(config, sizes)]
    ids = [c.video_id for c in clips]
    assert len(set(ids)) == len(ids), "generated video ids must be unique"
    return clips


# --- cache -------------------------------------------------------------------------------------


def world_dir(config: WorldConfig, root: str | Path) -> Path:
    return Path(root) / f"{config.profile}-{world_key(config)}"


def is_complete(path: Path, key: str) -> bool:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("key") == key and manifest.get("complete") is True
    return True


def _clean_stale(root: Path, key: str) -> None:
    """Remove temporary directories of this key left by generations that died."""
    for tmp in root.glob(f".tmp-*-{key}-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if not pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def generate_world(config: WorldConfig, root: str | Path) -> tuple[Path, dict]:
    """The world directory for ``config`` under ``root``: reused if complete, else generated.

    Returns ``(path, info)`` with ``info['reused']`` and, for a new world, timings.
    """
    root = Path(root)
    key = world_key(config)
    final = world_dir(config, root)
    if is_complete(final, key):
        return final, {"reused": True, "clips": json.loads((final / "manifest.json").read_text())["clips"]}
    if final.exists():
        raise DataError(f"{final} exists but is not a complete generated world (no valid manifest.json); "
                        "delete it to regenerate")
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root, key)
    tmp = root / f".tmp-{config.profile}-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        start = time.perf_counter()
        clips = plan_world(config)
        render_clips(clips, tmp, config)
        render_seconds = time.perf_counter() - start
        counts = write_annotations(clips, tmp, Context(config.seed, config.frames, config.fps))
        seconds = time.perf_counter() - start
        manifest = {"key": key, "complete": True, "settings": config.content(), "clips": len(clips),
                    "items": counts, "seconds": round(seconds, 2), "render_seconds": round(render_seconds, 2)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        try:
            tmp.rename(final)
        except OSError:
            if not is_complete(final, key):  # not a concurrent twin that finished first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, {"reused": False, "clips": len(clips), "seconds": seconds, "render_seconds": render_seconds}


def run(config: WorldConfig, inputs: dict[str, Path] | None, out_dir: str | Path,
        on_metrics: MetricsCallback | None = None) -> StageResult:
    """Stage: generate (or find) the world; artifact ``world`` is its directory."""
    root = Path(config.cache_root) if config.cache_root else Path(out_dir)
    path, info = generate_world(config, root)
    metrics = {"clips": float(info["clips"]), "reused": float(info["reused"])}
    if not info["reused"]:
        metrics["generation_seconds"] = info["seconds"]
        metrics["clips_per_second"] = info["clips"] / max(1e-9, info["render_seconds"])
    report(on_metrics, metrics, 0)
    return StageResult(metrics=metrics, artifacts={"world": path})


# --- ground truth, for measuring how semantic a code is -------------------------------------------

SCENE_LABELS = {
    "shape": SHAPES,
    "colour": list(COLOURS),
    "size": list(SIZES),
    "texture": TEXTURES,
    "action": ACTIONS,
    "num_objects": ["1", "2", "3"],
}


def load_scenes(world: str | Path) -> dict[str, SceneInfo]:
    """video id -> ``SceneInfo`` for every clip of a generated world."""
    path = Path(world) / "scenes.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found; is {world} a generated world?")
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        out[row["video_id"]] = SceneInfo(row["video_id"], row["pool"], [ObjectInfo(**o) for o in row["objects"]],
                                         row["main"])
    return out


def world_settings(world: str | Path) -> dict:
    """The settings a generated world was made with (its manifest): seed, image_size, num_frames, ..."""
    path = Path(world) / "manifest.json"
    try:
        return json.loads(path.read_text())["settings"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path}: no settings of a generated world ({err})") from None


def scene_labels(scene: SceneInfo) -> dict[str, int]:
    """Integer labels of the main object (and the object count), indexed into ``SCENE_LABELS``."""
    obj = scene.main_object
    values = {"shape": obj.shape, "colour": obj.colour, "size": obj.size, "texture": obj.texture,
              "action": obj.actions[0], "num_objects": str(len(scene.objects))}
    return {name: SCENE_LABELS[name].index(values[name]) for name in SCENE_LABELS}

