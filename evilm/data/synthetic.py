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
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from evilm.config import ConfigError
from evilm.data import captions as lang
from evilm.data import formats
from evilm.data.records import DataError, ObjectInfo, SceneInfo
from evilm.data.scenes import (
    ACTIONS,
    COLOURS,
    FINE_ACTIONS,
    REPEATABLE,
    SHAPES,
    SIZES,
    TEXTURES,
    SceneSpec,
    fine_action,
    render_scene,
    sample_scene,
)
from evilm.processes import pid_alive
from evilm.stage import MetricsCallback, StageResult, report

GENERATOR_VERSION = 1  # bump when the output of the same settings changes


@dataclass
class PoolSizes:
    """Clips per pool, and how each splits. Class pools give clips per class."""

    webvid_train: int
    webvid_val: int
    msrvtt_train: int  # the "9k" list; the "7k" list is its first 3/4
    msrvtt_test: int  # the "1k-A" list
    msvd_train: int
    msvd_val: int
    msvd_test: int
    tgif_train: int
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
    "quick": dict(image_size=128, num_frames=16, sizes=PoolSizes(
        webvid_train=1900, webvid_val=100, msrvtt_train=300, msrvtt_test=100, msvd_train=120, msvd_val=30,
        msvd_test=50, tgif_train=300, tgif_test=150, didemo_train=140, didemo_val=20, didemo_test=40,
        hmdb_train_per_class=14, hmdb_test_per_class=6, k400_train_per_class=15, k400_val_per_class=5)),
}
PROFILES["standard"] = dict(image_size=128, num_frames=16, sizes=PoolSizes(
    **{k: v * 4 for k, v in asdict(PROFILES["quick"]["sizes"]).items()}))

HMDB_CLASSES = list(ACTIONS)
K400_CLASSES = list(FINE_ACTIONS)


@dataclass
class WorldConfig:
    profile: Literal["smoke", "quick", "standard"] = "quick"
    seed: int = 0
    image_size: int | None = None  # None: the profile's (128 quick, 64 smoke)
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


def _rng(seed: int, *keys) -> np.random.Generator:
    parts = [seed] + [int(hashlib.md5(str(k).encode()).hexdigest()[:8], 16) for k in keys]
    return np.random.default_rng(parts)


def _token(rng: np.random.Generator, n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") -> str:
    return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=n))


def _objects(rng: np.random.Generator, weights=(0.5, 0.3, 0.2)) -> int:
    return 1 + int(rng.choice(3, p=weights))


def plan_world(config: WorldConfig) -> list[Clip]:
    sizes, frames, seed = config.pool_sizes(), config.frames, config.seed
    clips: list[Clip] = []

    # WebVid-style pretraining: mixed scenes, a third with two actions in sequence
    rng = _rng(seed, "webvid")
    total = sizes.webvid_train + sizes.webvid_val
    for i in range(total):
        video_id = str(1_000_000 + i * 7)
        page_dir = f"{(i // 50) * 50 + 1:06d}_{(i // 50) * 50 + 50:06d}"
        scene = sample_scene(rng, video_id, "webvid", frames, _objects(rng), two_actions_prob=0.3)
        clips.append(Clip("webvid", "train" if i < sizes.webvid_train else "val", video_id,
                          f"webvid/videos/{page_dir}/{video_id}.mp4", scene, extra={"page_dir": page_dir}))

    # MSRVTT videos: retrieval, open-ended QA and multiple choice share them
    rng = _rng(seed, "msrvtt")
    for i in range(sizes.msrvtt_train + sizes.msrvtt_test):
        video_id = f"video{i}"
        scene = sample_scene(rng, video_id, "msrvtt", frames, _objects(rng), two_actions_prob=0.3)
        clips.append(Clip("msrvtt", "train" if i < sizes.msrvtt_train else "test", video_id,
                          f"msrvtt/videos/all/{video_id}.mp4", scene))

    # MSVD: one object per clip (simpler videos, as MSVD's are)
    rng = _rng(seed, "msvd")
    n_train, n_val = sizes.msvd_train, sizes.msvd_val
    for i in range(n_train + n_val + sizes.msvd_test):
        name = f"{_token(rng, 11)}_{int(rng.integers(0, 200))}_{int(rng.integers(200, 400))}"
        split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
        scene = sample_scene(rng, name, "msvd", frames, 1, two_actions_prob=0.2)
        clips.append(Clip("msvd", split, name, f"msvd/YouTubeClips/{name}.mp4", scene, extra={"vid": i + 1}))

    # TGIF: repeated actions (Action), two-action clips (Transition), everything (FrameQA)
    rng = _rng(seed, "tgif")
    for i in range(sizes.tgif_train + sizes.tgif_test):
        gif = f"tumblr_{_token(rng, 15)}o1_250"
        kind = ("repeat", "sequence", "single")[int(rng.choice(3, p=[0.4, 0.4, 0.2]))]
        num_objects = _objects(rng, (0.6, 0.3, 0.1))
        if kind == "repeat":
            action = REPEATABLE[int(rng.integers(len(REPEATABLE)))]
            scene = sample_scene(rng, gif, "tgif", frames, num_objects, [action], repeats=int(rng.integers(2, 5)))
        else:
            scene = sample_scene(rng, gif, "tgif", frames, num_objects,
                                 two_actions_prob=1.0 if kind == "sequence" else 0.0)
        clips.append(Clip("tgif", "train" if i < sizes.tgif_train else "test", gif, f"tgif/gifs/{gif}.mp4",
                          scene, kind=kind))

    # DiDeMo: mostly two moments per video
    rng = _rng(seed, "didemo")
    n_train, n_val = sizes.didemo_train, sizes.didemo_val
    for i in range(n_train + n_val + sizes.didemo_test):
        name = f"{int(rng.integers(10**7, 10**8))}@N0{int(rng.integers(10))}_{int(rng.integers(10**10, 10**11))}_{_token(rng, 10, '0123456789abcdef')}"
        split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
        scene = sample_scene(rng, name, "didemo", frames, _objects(rng, (0.6, 0.3, 0.1)), two_actions_prob=0.75)
        clips.append(Clip("didemo", split, name, f"didemo/videos/{name}.mp4", scene))

    # HMDB51-style probe: coarse action classes
    rng = _rng(seed, "hmdb51")
    per = sizes.hmdb_train_per_class + sizes.hmdb_test_per_class
    for label in HMDB_CLASSES:
        for k in range(per):
            name = f"{_token(rng, 8)}_{label}_u_nm_np1_fr_med_{k}"
            scene = sample_scene(rng, name, "hmdb51", frames, _objects(rng, (0.6, 0.3, 0.1)), [label])
            split = "train" if k < sizes.hmdb_train_per_class else "test"
            clips.append(Clip("hmdb51", split, name, f"hmdb51/videos/{label}/{name}.mp4", scene, label=label))

    # Kinetics-style probe: finer classes (rotation sense, entry and exit side)
    rng = _rng(seed, "k400")
    per = sizes.k400_train_per_class + sizes.k400_val_per_class
    for label in K400_CLASSES:
        action, _, detail = label.partition("_") if label.startswith(("rotate_", "enter_", "leave_")) else (
            label, "", "")
        for k in range(per):
            youtube_id, start = _token(rng, 11), int(rng.integers(0, 300))
            name = formats.kinetics_file_name(youtube_id, start, start + 10)
            split = "train" if k < sizes.k400_train_per_class else "val"
            for _ in range(100):  # resample until the detail matches the class
                scene = sample_scene(rng, name, "k400", frames, _objects(rng, (0.6, 0.3, 0.1)), [action])
                if not detail or fine_action(scene.main_object) == label:
                    break
            clips.append(Clip("k400", split, name.removesuffix(".mp4"), f"k400/videos/{split}/{label}/{name}",
                              scene, label=label, extra={"youtube_id": youtube_id, "start": start}))
    ids = [c.video_id for c in clips]
    assert len(set(ids)) == len(ids), "generated video ids must be unique"
    return clips


# --- rendering (in worker processes) -----------------------------------------------------------


def encode_mp4(frames: np.ndarray, path: Path, fps: int, crf: int) -> None:
    """H.264 (libx264, yuv420p), one encoder thread, written under a temporary name first."""
    import av

    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
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


def render_clips(clips: list[Clip], root: Path, config: WorldConfig) -> None:
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


# --- annotations in the real formats -----------------------------------------------------------


def _start_xy(scene: SceneSpec) -> tuple[float, float]:
    spec = scene.objects[scene.main]
    return spec.x, spec.y


def write_annotations(clips: list[Clip], root: Path, config: WorldConfig) -> dict[str, int]:
    """Write every pool's annotation files; returns the number of items per file kind."""
    seed = config.seed
    by_pool: dict[str, list[Clip]] = {}
    for c in clips:
        by_pool.setdefault(c.pool, []).append(c)
    counts: dict[str, int] = {}

    def caption_of(c: Clip, k: int = 0) -> str:
        return lang.caption(c.scene.info(), _rng(seed, "caption", c.video_id, k))

    # WebVid
    (root / "webvid").mkdir(parents=True, exist_ok=True)
    for split, file in (("train", "results_2M_train.csv"), ("val", "results_2M_val.csv")):
        rows = [{"videoid": c.video_id, "contentUrl": f"https://example.invalid/{c.video_id}.mp4",
                 "duration": f"PT00H00M{math.ceil(config.frames / config.fps):02d}S",
                 "page_dir": c.extra["page_dir"], "name": caption_of(c)}
                for c in by_pool["webvid"] if c.split == split]
        formats.write_webvid_csv(root / "webvid" / file, rows)
        counts[f"webvid_{split}"] = len(rows)

    # MSRVTT: captions (several per training video, one per test video), split lists, QA, MC
    msrvtt = by_pool["msrvtt"]
    (root / "msrvtt/annotation").mkdir(parents=True, exist_ok=True)
    lists = root / "msrvtt/high-quality/structured-symlinks"
    lists.mkdir(parents=True, exist_ok=True)
    pairs = [(c.video_id, caption_of(c, k)) for c in msrvtt for k in range(3 if c.split == "train" else 1)]
    formats.write_msrvtt_json(root / "msrvtt/annotation/MSR_VTT.json", pairs)
    train_ids = [c.video_id for c in msrvtt if c.split == "train"]
    formats.write_id_list(lists / "train_list_jsfusion.txt", train_ids)
    formats.write_id_list(lists / "train_list_miech.txt", train_ids[: max(1, len(train_ids) * 3 // 4)])
    formats.write_id_list(lists / "val_list_jsfusion.txt", [c.video_id for c in msrvtt if c.split == "test"])
    counts["msrvtt_captions"] = len(pairs)
    (root / "msrvtt/qa").mkdir(parents=True, exist_ok=True)
    category = {a: i for i, a in enumerate(ACTIONS)}
    qid = 0
    # the MSRVTT-QA release has train/val/test; the world's val is the last 10% of train videos
    n_val = max(1, len(train_ids) // 10)
    qa_split = {c.video_id: ("test" if c.split == "test" else "val" if c.video_id in train_ids[-n_val:] else "train")
                for c in msrvtt}
    qa_rows: dict[str, list] = {"train": [], "val": [], "test": []}
    for c in msrvtt:
        for question, answer in lang.open_questions(c.scene.info(), _start_xy(c.scene), _rng(seed, "qa", c.video_id)):
            qa_rows[qa_split[c.video_id]].append({"answer": answer, "category_id": category[c.scene.main_object.actions[0]],
                                                  "id": qid, "question": question,
                                                  "video_id": int(c.video_id.removeprefix("video"))})
            qid += 1
    for split, rows in qa_rows.items():
        formats.write_xu_qa_json(root / f"msrvtt/qa/{split}_qa.json", rows)
        counts[f"msrvtt_qa_{split}"] = len(rows)
    (root / "msrvtt/mc").mkdir(parents=True, exist_ok=True)
    mc_rows = []
    for i, c in enumerate(c for c in msrvtt if c.split == "test"):
        info = c.scene.info()
        seed_k = int(_rng(seed, "caption", c.video_id, 0).integers(2**31))
        options, answer = lang.caption_options(info, seed_k)
        mc_rows.append({"qid": f"mc_{i}", "clip_name": c.video_id, "options": options, "answer": answer})
    formats.write_jsonl(root / "msrvtt/mc/msrvtt_mc_test.jsonl", mc_rows)
    counts["msrvtt_mc_test"] = len(mc_rows)

    # MSVD-QA
    msvd = by_pool["msvd"]
    (root / "msvd").mkdir(parents=True, exist_ok=True)
    (root / "msvd/youtube_mapping.txt").write_text("".join(f"{c.video_id} vid{c.extra['vid']}\n" for c in msvd))
    for split in ("train", "val", "test"):
        rows = []
        for c in (c for c in msvd if c.split == split):
            for question, answer in lang.open_questions(c.scene.info(), _start_xy(c.scene),
                                                        _rng(seed, "qa", c.video_id)):
                rows.append({"answer": answer, "id": len(rows), "question": question, "video_id": c.extra["vid"]})
        formats.write_xu_qa_json(root / f"msvd/{split}_qa.json", rows)
        counts[f"msvd_qa_{split}"] = len(rows)

    # TGIF-QA
    tgif = by_pool["tgif"]
    (root / "tgif/dataset").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        action_rows, transition_rows, frame_rows = [], [], []
        for vid, c in enumerate(c for c in tgif if c.split == split):
            info, rng = c.scene.info(), _rng(seed, "tgif", c.video_id)
            if c.kind == "repeat":
                question, options, answer = lang.action_question(info, rng)
                action_rows.append({"gif_name": c.video_id, "question": question,
                                    **{f"a{k + 1}": o for k, o in enumerate(options)}, "answer": answer,
                                    "vid_id": f"ACTION{len(action_rows) + 1}", "key": vid})
            if c.kind == "sequence":
                for question, options, answer in lang.transition_questions(info, rng):
                    transition_rows.append({"gif_name": c.video_id, "question": question,
                                            **{f"a{k + 1}": o for k, o in enumerate(options)}, "answer": answer,
                                            "vid_id": f"TRANS{len(transition_rows) + 1}", "key": vid})
            description = caption_of(c).lower()
            for question, answer, kind in lang.frame_questions(info, _start_xy(c.scene), rng):
                frame_rows.append({"gif_name": c.video_id, "question": question, "answer": answer, "type": kind,
                                   "vid_id": f"FRAMEQA{len(frame_rows) + 1}", "key": vid,
                                   "description": description})
        for task, rows in (("action", action_rows), ("transition", transition_rows), ("frameqa", frame_rows)):
            formats.write_tgif_csv(root / "tgif/dataset" / formats.tgif_file_name(task, split), task, rows)
            counts[f"tgif_{task}_{split}"] = len(rows)

    # DiDeMo: moments in 6 segments of the clip; annotators disagree a little on the times
    didemo = by_pool["didemo"]
    for split in ("train", "val", "test"):
        rows = []
        for c in (c for c in didemo if c.split == split):
            rng = _rng(seed, "didemo", c.video_id)
            descriptions = lang.moment_descriptions(c.scene.info(), rng)
            spans = [(0, 5)] if len(descriptions) == 1 else [(0, 2), (3, 5)]
            for description, (lo, hi) in zip(descriptions, spans):
                times = [[max(0, lo - int(rng.integers(0, 2))), min(5, hi + int(rng.integers(0, 2)))]
                         for _ in range(4)]
                rows.append({"annotation_id": len(rows), "description": description, "video": f"{c.video_id}.mp4",
                             "times": times, "dl_link": "https://example.invalid/", "num_segments": 6})
        (root / f"didemo/{split}_data.json").write_text(json.dumps(rows))
        counts[f"didemo_{split}"] = len(rows)

    # HMDB51 split files (the .avi names of the release; the world's files are .mp4)
    split_dir = root / "hmdb51/testTrainMulti_7030_splits"
    split_dir.mkdir(parents=True, exist_ok=True)
    for label in HMDB_CLASSES:
        lines = [f"{c.video_id}.avi {1 if c.split == 'train' else 2}\n"
                 for c in by_pool["hmdb51"] if c.label == label]
        (split_dir / f"{label}_test_split1.txt").write_text("".join(lines))
    counts["hmdb51"] = len(by_pool["hmdb51"])

    # Kinetics-400 CSVs
    (root / "k400/annotations").mkdir(parents=True, exist_ok=True)
    for split, file in (("train", "train.csv"), ("val", "validate.csv")):
        rows = [{"label": c.label, "youtube_id": c.extra["youtube_id"], "time_start": c.extra["start"],
                 "time_end": c.extra["start"] + 10, "split": "train" if split == "train" else "validate"}
                for c in by_pool["k400"] if c.split == split]
        formats.write_kinetics_csv(root / "k400/annotations" / file, rows)
        counts[f"k400_{split}"] = len(rows)

    # ground truth for every clip
    with open(root / "scenes.jsonl", "w") as f:
        for c in clips:
            info = c.scene.info()
            f.write(json.dumps({"video_id": c.video_id, "pool": c.pool, "split": c.split, "kind": c.kind,
                                "main": info.main, "objects": [asdict(o) for o in info.objects],
                                "start": [[o.x, o.y] for o in c.scene.objects]}) + "\n")
    return counts


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
        counts = write_annotations(clips, tmp, config)
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


def scene_labels(scene: SceneInfo) -> dict[str, int]:
    """Integer labels of the main object (and the object count), indexed into ``SCENE_LABELS``."""
    obj = scene.main_object
    values = {"shape": obj.shape, "colour": obj.colour, "size": obj.size, "texture": obj.texture,
              "action": obj.actions[0], "num_objects": str(len(scene.objects))}
    return {name: SCENE_LABELS[name].index(values[name]) for name in SCENE_LABELS}

