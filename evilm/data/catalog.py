"""Named benchmarks, read from a generated world or a real data-set root through the same readers.

``load_benchmark(name, root)`` expects this layout under ``root`` (a generated
world has exactly it; for real data, arrange downloads so, or pass the paths as
keyword options, e.g. ``video_dir=...``); where a file has several names (``a | b``)
the first that exists is read:

====================  ===========================================================================
benchmark             files (relative to ``root``)
====================  ===========================================================================
``webvid``            ``webvid/results_2M_train.csv``, ``webvid/results_2M_val.csv``,
                      videos ``webvid/videos/{page_dir}/{videoid}.mp4``
``msrvtt_ret``        ``msrvtt/annotation/MSR_VTT.json``, lists in
                      ``msrvtt/high-quality/structured-symlinks/`` (``train_list_jsfusion.txt`` 9k,
                      ``train_list_miech.txt`` 7k, ``val_list_jsfusion.txt`` 1k-A), optional
                      ``msrvtt/annotation/MSRVTT_JSFUSION_test.csv``; videos ``msrvtt/videos/all/``
``msrvtt_qa``         ``msrvtt/qa/{train,val,test}_qa.json``
``msrvtt_mc``         ``msrvtt/mc/msrvtt_mc_test.jsonl | msrvtt/mc/MSR_MC_test.csv`` (test only)
``msvd_qa``           ``msvd/{train,val,test}_qa.json``, ``msvd/youtube_mapping.txt``,
                      videos ``msvd/YouTubeClips/``
``tgif_action``       ``tgif/dataset/{Train,Test}_action_question.csv``, videos ``tgif/gifs/``
``tgif_transition``   ``tgif/dataset/{Train,Test}_transition_question.csv``
``tgif_frame``        ``tgif/dataset/{Train,Test}_frameqa_question.csv``
``didemo_ret``        ``didemo/{train,val,test}_data.json``, videos ``didemo/videos/``
``hmdb51``            ``hmdb51/testTrainMulti_7030_splits/``, videos ``hmdb51/videos/{class}/``
``k400``              ``k400/annotations/`` ``train.csv | kinetics_train.csv`` and
                      ``validate.csv | val.csv | kinetics_val.csv`` (the test split), videos
                      ``k400/videos/train/`` and ``k400/videos/val/ | k400/videos/validate/``
====================  ===========================================================================

For a data root, ``annotation_fingerprint`` hashes the annotation files (a stage that reads
them can key on it) and ``check_benchmark`` loads one benchmark and looks for a sample of its
videos, reporting problems instead of raising.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evilm.config import close_match
from evilm.data import formats
from evilm.data.answers import TOP_K, AnswerVocab
from evilm.data.records import DataError, Record

TASKS = {
    "webvid": "video_text",
    "msrvtt_ret": "video_text",
    "didemo_ret": "video_text",
    "msrvtt_qa": "qa",
    "msvd_qa": "qa",
    "tgif_frame": "qa",
    "tgif_action": "mc",
    "tgif_transition": "mc",
    "msrvtt_mc": "mc",
    "hmdb51": "class",
    "k400": "class",
}
BENCHMARKS = list(TASKS)


@dataclass
class Benchmark:
    """One benchmark's splits as records; ``kind`` is the dataset kind of ``evilm.data.datasets``."""

    name: str
    kind: str
    train: list[Record]
    test: list[Record]
    val: list[Record] = field(default_factory=list)
    answers: AnswerVocab | None = None  # open-ended QA
    classes: list[str] | None = None  # linear probes

    def split(self, name: str) -> list[Record]:
        if name not in ("train", "val", "test"):
            raise DataError(f"unknown split {name!r}; use train, val or test")
        return getattr(self, name)

    def texts(self) -> list[str]:
        """The training text (captions, questions, options): input for a vocabulary."""
        out = []
        for r in self.train:
            out.extend(_texts(r))
        return out


def _texts(record: Record) -> list[str]:
    if hasattr(record, "caption"):
        return [record.caption]
    if hasattr(record, "options"):
        return [record.question, *record.options] if record.question else list(record.options)
    if hasattr(record, "question"):
        return [record.question]
    return []


# --- where each benchmark's files are ---------------------------------------------------------


@dataclass
class Layout:
    """Where one benchmark's files are: annotation files (or folders) by role, and the video folder.

    ``files[role]`` is the path that is read (optional ones, such as a val split, may be absent);
    ``looked_for[role]`` every name tried for it (the first that exists wins). ``settings`` holds
    the other options.
    """

    video_dir: Path
    files: dict[str, Path]
    looked_for: dict[str, list[Path]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def file(self, role: str, what: str = "annotation file") -> Path:
        """The path of ``role``, failing with every name tried when it does not exist."""
        path = self.files[role]
        if not path.exists():
            tried = [str(p) for p in self.looked_for.get(role, [path])]
            also = f" (also looked for: {', '.join(tried[1:])})" if len(tried) > 1 else ""
            raise DataError(f"{tried[0]}: {what} not found{also}")
        return path

    def has(self, role: str) -> bool:
        return self.files[role].exists()


def _option(root: Path, options: dict, key: str, *defaults: str) -> tuple[Path, list[Path]]:
    """The path option ``key`` if given, else the first default that exists (else the first)."""
    value = options.pop(key, None)
    if value is not None:
        return Path(value), [Path(value)]
    tried = [root / d for d in defaults]
    return next((p for p in tried if p.exists()), tried[0]), tried


def _layout(root: Path, options: dict, video_default: str, files: dict[str, tuple[str, ...]]) -> Layout:
    """``files``: role -> (option name, default path, other accepted names...)."""
    layout = Layout(_option(root, options, "video_dir", video_default)[0], {})
    for role, (key, *defaults) in files.items():
        layout.files[role], layout.looked_for[role] = _option(root, options, key, *defaults)
    return layout


def _splits_in(folder: Path, pattern: str) -> dict[str, Path]:
    return {split: folder / pattern.format(split=split) for split in ("train", "val", "test")}


def _folder_layout(root: Path, options: dict, video_default: str, folder_key: str, folder_default: str,
                   pattern: str) -> Layout:
    """train / val / test files named by ``pattern`` in one annotation folder."""
    folder = _option(root, options, folder_key, folder_default)[0]
    return Layout(_option(root, options, "video_dir", video_default)[0], _splits_in(folder, pattern))


def _layout_webvid(root: Path, options: dict) -> Layout:
    layout = _layout(root, options, "webvid/videos", {
        "train": ("train_file", "webvid/results_2M_train.csv"),
        "val": ("val_file", "webvid/results_2M_val.csv"),
    })
    layout.settings["caption_column"] = options.pop("caption_column", "name")
    return layout


MSRVTT_TRAIN_LISTS = {"9k": "train_list_jsfusion.txt", "7k": "train_list_miech.txt"}


def _layout_msrvtt_ret(root: Path, options: dict) -> Layout:
    split = options.pop("train_split", "9k")
    if split not in MSRVTT_TRAIN_LISTS:
        raise DataError(f"msrvtt_ret: train_split must be '9k' or '7k', got {split!r}")
    lists = _option(root, options, "split_dir", "msrvtt/high-quality/structured-symlinks")[0]
    layout = _layout(root, options, "msrvtt/videos/all", {
        "captions": ("annotation_file", "msrvtt/annotation/MSR_VTT.json"),
        "test_captions": ("jsfusion_csv", "msrvtt/annotation/MSRVTT_JSFUSION_test.csv"),
    })
    layout.files["train_list"] = lists / MSRVTT_TRAIN_LISTS[split]
    layout.files["test_list"] = lists / "val_list_jsfusion.txt"
    return layout


def _layout_msvd_qa(root: Path, options: dict) -> Layout:
    layout = _folder_layout(root, options, "msvd/YouTubeClips", "qa_dir", "msvd", "{split}_qa.json")
    layout.files["mapping"] = _option(root, options, "mapping_file", "msvd/youtube_mapping.txt")[0]
    return layout


def _layout_tgif(task: str):
    def layout(root: Path, options: dict) -> Layout:
        folder = _option(root, options, "question_dir", "tgif/dataset")[0]
        files = {s: folder / formats.tgif_file_name(task, s) for s in ("train", "test")}
        return Layout(_option(root, options, "video_dir", "tgif/gifs")[0], files)

    return layout


def _layout_hmdb51(root: Path, options: dict) -> Layout:
    layout = _layout(root, options, "hmdb51/videos",
                     {"split_dir": ("split_dir", "hmdb51/testTrainMulti_7030_splits")})
    layout.settings["split"] = int(options.pop("split", 1))
    return layout


def _layout_k400(root: Path, options: dict) -> Layout:
    folder = _option(root, options, "annotation_dir", "k400/annotations")[0]
    layout = Layout(_option(root, options, "video_dir", "k400/videos")[0], {})
    for role, names in (("train", ("train.csv", "kinetics_train.csv")),
                        ("test", ("validate.csv", "val.csv", "kinetics_val.csv"))):
        tried = [folder / n for n in names]
        layout.files[role] = next((p for p in tried if p.is_file()), tried[0])
        layout.looked_for[role] = tried
    return layout


_LAYOUTS = {
    "webvid": _layout_webvid,
    "msrvtt_ret": _layout_msrvtt_ret,
    "msrvtt_qa": lambda root, options: _folder_layout(root, options, "msrvtt/videos/all", "qa_dir", "msrvtt/qa",
                                                      "{split}_qa.json"),
    "msvd_qa": _layout_msvd_qa,
    "tgif_action": _layout_tgif("action"),
    "tgif_transition": _layout_tgif("transition"),
    "tgif_frame": _layout_tgif("frameqa"),
    "msrvtt_mc": lambda root, options: _layout(root, options, "msrvtt/videos/all", {
        "test": ("test_file", "msrvtt/mc/msrvtt_mc_test.jsonl", "msrvtt/mc/MSR_MC_test.csv")}),
    "didemo_ret": lambda root, options: _folder_layout(root, options, "didemo/videos", "annotation_dir", "didemo",
                                                       "{split}_data.json"),
    "hmdb51": _layout_hmdb51,
    "k400": _layout_k400,
}


def benchmark_layout(name: str, root: str | Path, **options) -> Layout:
    """Where benchmark ``name``'s files are under ``root`` (see the module docs); nothing is read."""
    if name not in TASKS:
        raise DataError(f"unknown benchmark {name!r}{close_match(name, TASKS)}; known: {', '.join(TASKS)}")
    options = dict(options)
    layout = _LAYOUTS[name](Path(root), options)
    if name in TOP_K:
        layout.settings["top_k"] = int(options.pop("top_k", TOP_K[name]))
    if options:
        raise DataError(f"unknown option(s) for {name}: {', '.join(sorted(options))}")
    return layout


# --- reading -----------------------------------------------------------------------------------


def load_benchmark(name: str, root: str | Path, **options) -> Benchmark:
    """Read benchmark ``name`` from ``root`` (see the module docs for the layout and options).

    Options common to all: the paths named in the layout (``video_dir``, ``train_file``...);
    ``msrvtt_ret`` also takes ``train_split="9k"|"7k"``; QA benchmarks take ``top_k``
    (default: the field's 1,500 / 1,000 / 1,540).
    """
    layout = benchmark_layout(name, root, **options)
    if not Path(root).is_dir():
        raise DataError(f"{root}: data root not found")
    bench = _LOADERS[name](layout)
    if not bench.train and bench.kind != "mc":
        raise DataError(f"{name}: the training split under {root} is empty")
    if not bench.test:
        raise DataError(f"{name}: the test split under {root} is empty")
    return bench


def _three_splits(layout: Layout, read) -> dict[str, list[Record]]:
    """train and test are required; val is read when its file exists."""
    return {s: read(layout.file(s)) if s != "val" or layout.has(s) else [] for s in ("train", "val", "test")}


def _qa(name: str, layout: Layout, splits: dict[str, list[Record]]) -> Benchmark:
    answers = AnswerVocab.build([r.answer for r in splits["train"]], layout.settings["top_k"])
    return Benchmark(name, "qa", splits["train"], splits["test"], splits["val"], answers=answers)


def _webvid(layout: Layout) -> Benchmark:
    def read(path: Path) -> list[Record]:
        return formats.read_webvid_csv(path, layout.video_dir, layout.settings["caption_column"])

    val = read(layout.file("val")) if layout.has("val") else []
    return Benchmark("webvid", "video_text", read(layout.file("train")), test=val, val=val)


def _msrvtt_ret(layout: Layout) -> Benchmark:
    captions = formats.read_msrvtt_captions(layout.file("captions"))
    test_captions = (formats.read_msrvtt_jsfusion_csv(layout.file("test_captions"))
                     if layout.has("test_captions") else None)
    train_list, test_list = layout.file("train_list", "split list"), layout.file("test_list", "split list")
    videos = layout.video_dir
    train = formats.read_msrvtt_retrieval(captions, formats.read_id_list(train_list), videos, False, train_list)
    test = formats.read_msrvtt_retrieval(captions, formats.read_id_list(test_list), videos, True, test_list,
                                         test_captions)
    return Benchmark("msrvtt_ret", "video_text", train, test)


def _msrvtt_qa(layout: Layout) -> Benchmark:
    return _qa("msrvtt_qa", layout, _three_splits(layout, lambda p: formats.read_msrvtt_qa(p, layout.video_dir)))


def _msvd_qa(layout: Layout) -> Benchmark:
    mapping = layout.file("mapping", "youtube_mapping.txt")
    return _qa("msvd_qa", layout,
               _three_splits(layout, lambda p: formats.read_msvd_qa(p, mapping, layout.video_dir)))


def _tgif(task: str, name: str):
    def load(layout: Layout) -> Benchmark:
        train, test = (formats.read_tgif_qa(layout.file(s), task, layout.video_dir) for s in ("train", "test"))
        if task == "frameqa":
            return _qa(name, layout, {"train": train, "val": [], "test": test})
        return Benchmark(name, "mc", train, test)

    return load


def _msrvtt_mc(layout: Layout) -> Benchmark:
    path = layout.file("test")
    read = formats.read_msrvtt_mc_csv if path.suffix.lower() in (".csv", ".tsv") else formats.read_msrvtt_mc_jsonl
    return Benchmark("msrvtt_mc", "mc", [], read(path, layout.video_dir))


def _didemo(layout: Layout) -> Benchmark:
    splits = _three_splits(layout, lambda p: formats.read_didemo(p, layout.video_dir))
    return Benchmark("didemo_ret", "video_text", splits["train"], splits["test"], splits["val"])


def _hmdb51(layout: Layout) -> Benchmark:
    split_dir, split = layout.file("split_dir", "split folder"), layout.settings["split"]
    train = formats.read_hmdb51_split(split_dir, layout.video_dir, split, "train")
    test = formats.read_hmdb51_split(split_dir, layout.video_dir, split, "test")
    return Benchmark("hmdb51", "class", train, test, classes=sorted({r.label for r in train}))


def _k400(layout: Layout) -> Benchmark:
    videos = layout.video_dir
    test_videos = next((d for d in (videos / "val", videos / "validate") if d.is_dir()), videos / "val")
    train = formats.read_kinetics_csv(layout.file("train"), videos / "train")
    test = formats.read_kinetics_csv(layout.file("test"), test_videos)
    return Benchmark("k400", "class", train, test, classes=sorted({r.label for r in train}))


_LOADERS = {
    "webvid": _webvid,
    "msrvtt_ret": _msrvtt_ret,
    "msrvtt_qa": _msrvtt_qa,
    "msvd_qa": _msvd_qa,
    "tgif_action": _tgif("action", "tgif_action"),
    "tgif_transition": _tgif("transition", "tgif_transition"),
    "tgif_frame": _tgif("frameqa", "tgif_frame"),
    "msrvtt_mc": _msrvtt_mc,
    "didemo_ret": _didemo,
    "hmdb51": _hmdb51,
    "k400": _k400,
}


def text_corpus(root: str | Path, names=("webvid",)) -> list[str]:
    """Training text of the named benchmarks: the corpus a vocabulary is built from."""
    out = []
    for name in names:
        out.extend(load_benchmark(name, root).texts())
    return out


# --- checking a data root ----------------------------------------------------------------------

HASH_LIMIT = 4 << 20  # files up to this size are hashed by content; bigger ones by size and mtime


def annotation_files(name: str, root: str | Path, **options) -> list[Path]:
    """The annotation files benchmark ``name`` reads (a folder stands for the files in it),
    including optional ones that are absent: adding one changes what is read."""
    return list(benchmark_layout(name, root, **options).files.values())


def _file_entries(path: Path, root: Path, hash_limit: int) -> list[dict[str, Any]]:
    def relative(p: Path) -> str:
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return p.resolve().as_posix()

    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return [e for f in files for e in _file_entries(f, root, hash_limit)] or [
            {"path": relative(path), "empty_folder": True}]
    if not path.is_file():
        return [{"path": relative(path), "absent": True}]
    stat = path.stat()
    entry: dict[str, Any] = {"path": relative(path), "size": stat.st_size}
    if stat.st_size <= hash_limit:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        entry["sha256"] = digest.hexdigest()
    else:
        entry["mtime_ns"] = stat.st_mtime_ns
    return [entry]


def annotation_fingerprint(benchmarks: str | Iterable[str], root: str | Path, hash_limit: int = HASH_LIMIT,
                           options: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """A stable hash of the annotation files of ``benchmarks`` under ``root``: each file's path
    (relative to ``root``), size, and content hash (files up to ``hash_limit`` bytes) or
    modification time (bigger ones). Absent files count too. Videos are not included.

    ``options``: per benchmark, the path options ``load_benchmark`` would get.
    """
    root = Path(root)
    names = [benchmarks] if isinstance(benchmarks, str) else sorted(set(benchmarks))
    entries: dict[str, dict[str, Any]] = {}
    for name in names:
        for path in annotation_files(name, root, **dict((options or {}).get(name, {}))):
            for entry in _file_entries(path, root, hash_limit):
                entries[entry["path"]] = entry
    payload = json.dumps({"scheme": "evilm-annotations-1", "files": [entries[k] for k in sorted(entries)]},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class BenchmarkCheck:
    """What ``check_benchmark`` found: records per split, the sampled videos that are missing or
    empty, and problems as readable lines (none: the benchmark is usable)."""

    name: str
    root: str
    counts: dict[str, int] = field(default_factory=dict)
    videos_sampled: int = 0
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        counts = ", ".join(f"{split} {n}" for split, n in self.counts.items()) or "not loaded"
        head = f"{self.name}: {counts}; {len(self.missing)} of {self.videos_sampled} sampled videos missing"
        return head if self.ok else head + "\n" + "\n".join(f"  - {p}" for p in self.problems)


def check_benchmark(name: str, root: str | Path, sample: int = 20, seed: int = 0, max_missing: float = 0.05,
                    **options) -> BenchmarkCheck:
    """Load benchmark ``name`` and look for ``sample`` seeded videos per split; never raises for bad data.

    A problem is a file that does not load (the reader's error, naming the file and line) or more
    than ``max_missing`` of a split's sampled videos missing or empty (partial copies of WebVid-style
    data sets are normal, and the loader skips a few unreadable clips). An unknown benchmark or
    option is the caller's error and raises ``DataError``.
    """
    benchmark_layout(name, root, **options)  # unknown names and options raise here
    result = BenchmarkCheck(name, str(root))
    try:
        bench = load_benchmark(name, root, **options)
    except (DataError, OSError) as err:
        result.problems.append(str(err))
        return result
    checked: list[list[Record]] = []
    for index, split in enumerate(("train", "val", "test")):
        records = bench.split(split)
        result.counts[split] = len(records)
        videos = list(dict.fromkeys(r.video_path for r in records))
        if not videos or any(records is seen for seen in checked):  # WebVid's test split is its val split
            continue
        checked.append(records)
        rng = np.random.default_rng([seed, index])
        chosen = [videos[i] for i in sorted(rng.choice(len(videos), size=min(sample, len(videos)), replace=False))]
        missing = [v for v in chosen if not Path(v).is_file() or Path(v).stat().st_size == 0]
        result.videos_sampled += len(chosen)
        result.missing.extend(missing)
        if len(missing) > max_missing * len(chosen):
            result.problems.append(f"{name} {split}: {len(missing)} of {len(chosen)} sampled videos are missing or "
                                   f"empty (more than {max_missing:.0%}), e.g. {missing[0]}")
    return result
