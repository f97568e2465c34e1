"""The generated world's annotations, one writer per benchmark, each in its real data set's format.

Each writer mirrors a reader of ``evilm.data.catalog``: it takes the planned clips of its pool and
writes the files that reader expects under the world's root, returning the number of items per
file. ``write_annotations`` calls them all. The language comes from ``evilm.data.captions``; every
random choice is drawn from a generator keyed by (world seed, purpose, video id), so a clip's text
does not depend on which other clips exist.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evilm.data import captions as lang
from evilm.data import formats
from evilm.data.scenes import ACTIONS, keyed_rng

Counts = dict[str, int]


@dataclass
class Context:
    """What every writer needs besides its clips: the world's seed and clip timing."""

    seed: int
    num_frames: int
    fps: int

    def rng(self, *keys: Any) -> np.random.Generator:
        return keyed_rng(self.seed, *keys)

    def caption(self, clip: Any, k: int = 0) -> str:
        """Caption ``k`` of a clip; retrieval pools name the main object fully (one video per caption)."""
        full = clip.pool in FULL_CAPTION_POOLS
        return lang.caption(clip.scene.info(), self.rng("caption", clip.video_id, k), full=full)


# Pools whose captions are retrieval queries: each must single out one test video.
FULL_CAPTION_POOLS = ("msrvtt",)


def _start_xy(clip: Any) -> tuple[float, float]:
    spec = clip.scene.objects[clip.scene.main]
    return spec.x, spec.y


def write_webvid(clips: list, root: Path, ctx: Context) -> Counts:
    (root / "webvid").mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, file in (("train", "results_2M_train.csv"), ("val", "results_2M_val.csv")):
        rows = [{"videoid": c.video_id, "contentUrl": f"https://example.invalid/{c.video_id}.mp4",
                 "duration": f"PT00H00M{math.ceil(ctx.num_frames / ctx.fps):02d}S",
                 "page_dir": c.extra["page_dir"], "name": ctx.caption(c)}
                for c in clips if c.split == split]
        formats.write_webvid_csv(root / "webvid" / file, rows)
        counts[f"webvid_{split}"] = len(rows)
    return counts


def write_msrvtt_retrieval(clips: list, root: Path, ctx: Context) -> Counts:
    """MSR_VTT.json (three captions per training video, one per test video) and the split lists."""
    (root / "msrvtt/annotation").mkdir(parents=True, exist_ok=True)
    lists = root / "msrvtt/high-quality/structured-symlinks"
    lists.mkdir(parents=True, exist_ok=True)
    pairs = [(c.video_id, ctx.caption(c, k)) for c in clips for k in range(3 if c.split == "train" else 1)]
    formats.write_msrvtt_json(root / "msrvtt/annotation/MSR_VTT.json", pairs)
    train_ids = [c.video_id for c in clips if c.split == "train"]
    formats.write_id_list(lists / "train_list_jsfusion.txt", train_ids)
    formats.write_id_list(lists / "train_list_miech.txt", train_ids[: max(1, len(train_ids) * 3 // 4)])
    formats.write_id_list(lists / "val_list_jsfusion.txt", [c.video_id for c in clips if c.split == "test"])
    return {"msrvtt_captions": len(pairs)}


def write_msrvtt_qa(clips: list, root: Path, ctx: Context) -> Counts:
    """MSRVTT-QA's train/val/test JSON; the world's val is the last 10% of the training videos."""
    (root / "msrvtt/qa").mkdir(parents=True, exist_ok=True)
    category = {a: i for i, a in enumerate(ACTIONS)}
    train_ids = [c.video_id for c in clips if c.split == "train"]
    val_ids = set(train_ids[-max(1, len(train_ids) // 10):])
    rows: dict[str, list] = {"train": [], "val": [], "test": []}
    qid = 0
    for c in clips:
        split = "test" if c.split == "test" else "val" if c.video_id in val_ids else "train"
        for question, answer in lang.open_questions(c.scene.info(), _start_xy(c), ctx.rng("qa", c.video_id)):
            rows[split].append({"answer": answer, "category_id": category[c.scene.main_object.actions[0]], "id": qid,
                                "question": question, "video_id": int(c.video_id.removeprefix("video"))})
            qid += 1
    counts = {}
    for split, items in rows.items():
        formats.write_xu_qa_json(root / f"msrvtt/qa/{split}_qa.json", items)
        counts[f"msrvtt_qa_{split}"] = len(items)
    return counts


def write_msrvtt_mc(clips: list, root: Path, ctx: Context) -> Counts:
    """MSRVTT-MC: each test video's caption among four captions of other test videos (as in the release)."""
    (root / "msrvtt/mc").mkdir(parents=True, exist_ok=True)
    test = [c for c in clips if c.split == "test"]
    captions = {c.video_id: ctx.caption(c) for c in test}
    pool = list(captions.values())
    if len(pool) < 5:  # a tiny world: borrow distractors from the training videos' captions
        pool += [ctx.caption(c) for c in clips if c.split == "train"]
    rows = []
    for i, c in enumerate(test):
        options, answer = lang.choice_set(captions[c.video_id], pool, ctx.rng("mc", c.video_id))
        rows.append({"qid": f"mc_{i}", "clip_name": c.video_id, "options": options, "answer": answer})
    formats.write_jsonl(root / "msrvtt/mc/msrvtt_mc_test.jsonl", rows)
    return {"msrvtt_mc_test": len(rows)}


def write_msvd_qa(clips: list, root: Path, ctx: Context) -> Counts:
    (root / "msvd").mkdir(parents=True, exist_ok=True)
    (root / "msvd/youtube_mapping.txt").write_text("".join(f"{c.video_id} vid{c.extra['vid']}\n" for c in clips))
    counts = {}
    for split in ("train", "val", "test"):
        rows = []
        for c in (c for c in clips if c.split == split):
            for question, answer in lang.open_questions(c.scene.info(), _start_xy(c), ctx.rng("qa", c.video_id)):
                rows.append({"answer": answer, "id": len(rows), "question": question, "video_id": c.extra["vid"]})
        formats.write_xu_qa_json(root / f"msvd/{split}_qa.json", rows)
        counts[f"msvd_qa_{split}"] = len(rows)
    return counts


def _options_row(prefix: str, number: int, clip: Any, question: str, options: list[str], answer: int,
                 key: int) -> dict[str, Any]:
    return {"gif_name": clip.video_id, "question": question, **{f"a{k + 1}": o for k, o in enumerate(options)},
            "answer": answer, "vid_id": f"{prefix}{number}", "key": key}


def write_tgif(clips: list, root: Path, ctx: Context) -> Counts:
    """TGIF-QA's Action (repeated actions), Transition (two in sequence) and FrameQA question files."""
    (root / "tgif/dataset").mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "test"):
        tasks: dict[str, list] = {"action": [], "transition": [], "frameqa": []}
        for key, c in enumerate(c for c in clips if c.split == split):
            info, rng = c.scene.info(), ctx.rng("tgif", c.video_id)
            if c.kind == "repeat":
                tasks["action"].append(_options_row("ACTION", len(tasks["action"]) + 1, c,
                                                    *lang.action_question(info, rng), key))
            if c.kind == "sequence":
                for item in lang.transition_questions(info, rng):
                    tasks["transition"].append(_options_row("TRANS", len(tasks["transition"]) + 1, c, *item, key))
            description = ctx.caption(c).lower()
            for question, answer, kind in lang.frame_questions(info, _start_xy(c), rng):
                tasks["frameqa"].append({"gif_name": c.video_id, "question": question, "answer": answer,
                                         "type": kind, "vid_id": f"FRAMEQA{len(tasks['frameqa']) + 1}", "key": key,
                                         "description": description})
        for task, rows in tasks.items():
            formats.write_tgif_csv(root / "tgif/dataset" / formats.tgif_file_name(task, split), task, rows)
            counts[f"tgif_{task}_{split}"] = len(rows)
    return counts


def write_didemo(clips: list, root: Path, ctx: Context) -> Counts:
    """DiDeMo's JSON: moments in 6 segments of the clip; annotators disagree a little on the times."""
    counts = {}
    for split in ("train", "val", "test"):
        rows = []
        for c in (c for c in clips if c.split == split):
            rng = ctx.rng("didemo", c.video_id)
            descriptions = lang.moment_descriptions(c.scene.info(), rng)
            spans = [(0, 5)] if len(descriptions) == 1 else [(0, 2), (3, 5)]
            for description, (lo, hi) in zip(descriptions, spans):
                times = [[max(0, lo - int(rng.integers(0, 2))), min(5, hi + int(rng.integers(0, 2)))]
                         for _ in range(4)]
                rows.append({"annotation_id": len(rows), "description": description, "video": f"{c.video_id}.mp4",
                             "times": times, "dl_link": "https://example.invalid/", "num_segments": 6})
        (root / "didemo").mkdir(parents=True, exist_ok=True)
        (root / f"didemo/{split}_data.json").write_text(json.dumps(rows))
        counts[f"didemo_{split}"] = len(rows)
    return counts


def write_hmdb51(clips: list, root: Path, ctx: Context) -> Counts:
    """HMDB51's split files (the release's .avi names; the world's files are .mp4)."""
    split_dir = root / "hmdb51/testTrainMulti_7030_splits"
    split_dir.mkdir(parents=True, exist_ok=True)
    for label in dict.fromkeys(c.label for c in clips):
        lines = [f"{c.video_id}.avi {1 if c.split == 'train' else 2}\n" for c in clips if c.label == label]
        (split_dir / f"{label}_test_split1.txt").write_text("".join(lines))
    return {"hmdb51": len(clips)}


def write_k400(clips: list, root: Path, ctx: Context) -> Counts:
    (root / "k400/annotations").mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, file in (("train", "train.csv"), ("val", "validate.csv")):
        rows = [{"label": c.label, "youtube_id": c.extra["youtube_id"], "time_start": c.extra["start"],
                 "time_end": c.extra["start"] + 10, "split": "train" if split == "train" else "validate"}
                for c in clips if c.split == split]
        formats.write_kinetics_csv(root / "k400/annotations" / file, rows)
        counts[f"k400_{split}"] = len(rows)
    return counts


def write_scenes(clips: list, root: Path, ctx: Context) -> Counts:
    """``scenes.jsonl``: the ground truth of every clip (for probes of what a code or feature knows)."""
    with open(root / "scenes.jsonl", "w") as f:
        for c in clips:
            info = c.scene.info()
            f.write(json.dumps({"video_id": c.video_id, "pool": c.pool, "split": c.split, "kind": c.kind,
                                "main": info.main, "objects": [asdict(o) for o in info.objects],
                                "start": [[o.x, o.y] for o in c.scene.objects]}) + "\n")
    return {"scenes": len(clips)}


# pool -> the writers of the benchmarks made from it (MSRVTT's videos serve three benchmarks)
WRITERS: dict[str, list[Callable[[list, Path, Context], Counts]]] = {
    "webvid": [write_webvid],
    "msrvtt": [write_msrvtt_retrieval, write_msrvtt_qa, write_msrvtt_mc],
    "msvd": [write_msvd_qa],
    "tgif": [write_tgif],
    "didemo": [write_didemo],
    "hmdb51": [write_hmdb51],
    "k400": [write_k400],
}


def write_annotations(clips: list, root: Path, ctx: Context) -> Counts:
    """Every pool's annotation files and ``scenes.jsonl``; returns the number of items per file kind."""
    by_pool: dict[str, list] = {}
    for c in clips:
        by_pool.setdefault(c.pool, []).append(c)
    counts: Counts = {}
    for pool, writers in WRITERS.items():
        for write in writers:
            counts.update(write(by_pool.get(pool, []), root, ctx))
    counts.update(write_scenes(clips, root, ctx))
    return counts
