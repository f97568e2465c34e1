"""Named benchmarks, read from a generated world or a real data-set root through the same readers.

``load_benchmark(name, root)`` expects this layout under ``root`` (a generated
world has exactly it; for real data, arrange downloads so, or pass the paths as
keyword options, e.g. ``video_dir=...``):

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
``msrvtt_mc``         ``msrvtt/mc/msrvtt_mc_test.jsonl`` (test only: zero-shot)
``msvd_qa``           ``msvd/{train,val,test}_qa.json``, ``msvd/youtube_mapping.txt``,
                      videos ``msvd/YouTubeClips/``
``tgif_action``       ``tgif/dataset/{Train,Test}_action_question.csv``, videos ``tgif/gifs/``
``tgif_transition``   ``tgif/dataset/{Train,Test}_transition_question.csv``
``tgif_frame``        ``tgif/dataset/{Train,Test}_frameqa_question.csv``
``didemo_ret``        ``didemo/{train,val,test}_data.json``, videos ``didemo/videos/``
``hmdb51``            ``hmdb51/testTrainMulti_7030_splits/``, videos ``hmdb51/videos/{class}/``
``k400``              ``k400/annotations/{train,validate}.csv``, videos ``k400/videos/{train,val}/``
====================  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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


def _path(root: Path, options: dict, key: str, default: str) -> Path:
    value = options.pop(key, None)
    return Path(value) if value is not None else root / default


def load_benchmark(name: str, root: str | Path, **options) -> Benchmark:
    """Read benchmark ``name`` from ``root`` (see the module docs for the layout and options).

    Options common to all: the paths named in the layout (``video_dir``, ``train_file``...);
    ``msrvtt_ret`` also takes ``train_split="9k"|"7k"``; QA benchmarks take ``top_k``
    (default: the field's 1,500 / 1,000 / 1,540).
    """
    if name not in TASKS:
        raise DataError(f"unknown benchmark {name!r}{close_match(name, TASKS)}; known: {', '.join(TASKS)}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root not found")
    options = dict(options)
    bench = _LOADERS[name](root, options)
    if options:
        raise DataError(f"unknown option(s) for {name}: {', '.join(sorted(options))}")
    if not bench.train and bench.kind != "mc":
        raise DataError(f"{name}: the training split under {root} is empty")
    if not bench.test:
        raise DataError(f"{name}: the test split under {root} is empty")
    return bench


def _webvid(root: Path, options: dict) -> Benchmark:
    videos = _path(root, options, "video_dir", "webvid/videos")
    caption_column = options.pop("caption_column", "name")
    train = formats.read_webvid_csv(_path(root, options, "train_file", "webvid/results_2M_train.csv"), videos,
                                    caption_column)
    val_file = _path(root, options, "val_file", "webvid/results_2M_val.csv")
    val = formats.read_webvid_csv(val_file, videos, caption_column) if val_file.is_file() else []
    return Benchmark("webvid", "video_text", train, test=val, val=val)


def _msrvtt_ret(root: Path, options: dict) -> Benchmark:
    videos = _path(root, options, "video_dir", "msrvtt/videos/all")
    lists = _path(root, options, "split_dir", "msrvtt/high-quality/structured-symlinks")
    split = options.pop("train_split", "9k")
    train_lists = {"9k": "train_list_jsfusion.txt", "7k": "train_list_miech.txt"}
    if split not in train_lists:
        raise DataError(f"msrvtt_ret: train_split must be '9k' or '7k', got {split!r}")
    annotation = _path(root, options, "annotation_file", "msrvtt/annotation/MSR_VTT.json")
    captions = formats.read_msrvtt_captions(annotation)
    jsfusion_csv = _path(root, options, "jsfusion_csv", "msrvtt/annotation/MSRVTT_JSFUSION_test.csv")
    test_captions = formats.read_msrvtt_jsfusion_csv(jsfusion_csv) if jsfusion_csv.is_file() else None
    train_list, test_list = lists / train_lists[split], lists / "val_list_jsfusion.txt"
    train = formats.read_msrvtt_retrieval(captions, formats.read_id_list(train_list), videos, False, train_list)
    test = formats.read_msrvtt_retrieval(captions, formats.read_id_list(test_list), videos, True, test_list,
                                         test_captions)
    return Benchmark("msrvtt_ret", "video_text", train, test)


def _three_splits(path_of, read) -> dict[str, list[Record]]:
    """train and test are required; val is read when its file exists."""
    out = {}
    for split in ("train", "val", "test"):
        path = path_of(split)
        out[split] = read(path) if split != "val" or path.is_file() else []
    return out


def _qa(name: str, train, val, test, options: dict) -> Benchmark:
    top_k = int(options.pop("top_k", TOP_K[name]))
    answers = AnswerVocab.build([r.answer for r in train], top_k)
    return Benchmark(name, "qa", train, test, val, answers=answers)


def _msrvtt_qa(root: Path, options: dict) -> Benchmark:
    videos = _path(root, options, "video_dir", "msrvtt/videos/all")
    qa_dir = _path(root, options, "qa_dir", "msrvtt/qa")
    splits = _three_splits(lambda s: qa_dir / f"{s}_qa.json", lambda p: formats.read_msrvtt_qa(p, videos))
    return _qa("msrvtt_qa", splits["train"], splits["val"], splits["test"], options)


def _msvd_qa(root: Path, options: dict) -> Benchmark:
    videos = _path(root, options, "video_dir", "msvd/YouTubeClips")
    qa_dir = _path(root, options, "qa_dir", "msvd")
    mapping = _path(root, options, "mapping_file", "msvd/youtube_mapping.txt")
    splits = _three_splits(lambda s: qa_dir / f"{s}_qa.json", lambda p: formats.read_msvd_qa(p, mapping, videos))
    return _qa("msvd_qa", splits["train"], splits["val"], splits["test"], options)


def _tgif(task: str, name: str):
    def load(root: Path, options: dict) -> Benchmark:
        videos = _path(root, options, "video_dir", "tgif/gifs")
        data = _path(root, options, "question_dir", "tgif/dataset")
        train = formats.read_tgif_qa(data / formats.tgif_file_name(task, "train"), task, videos)
        test = formats.read_tgif_qa(data / formats.tgif_file_name(task, "test"), task, videos)
        if task == "frameqa":
            return _qa(name, train, [], test, options)
        return Benchmark(name, "mc", train, test)

    return load


def _msrvtt_mc(root: Path, options: dict) -> Benchmark:
    videos = _path(root, options, "video_dir", "msrvtt/videos/all")
    test = formats.read_msrvtt_mc_jsonl(_path(root, options, "test_file", "msrvtt/mc/msrvtt_mc_test.jsonl"), videos)
    return Benchmark("msrvtt_mc", "mc", [], test)


def _didemo(root: Path, options: dict) -> Benchmark:
    videos = _path(root, options, "video_dir", "didemo/videos")
    data = _path(root, options, "annotation_dir", "didemo")
    splits = _three_splits(lambda s: data / f"{s}_data.json", lambda p: formats.read_didemo(p, videos))
    return Benchmark("didemo_ret", "video_text", splits["train"], splits["test"], splits["val"])


def _hmdb51(root: Path, options: dict) -> Benchmark:
    videos = _path(root, options, "video_dir", "hmdb51/videos")
    split_dir = _path(root, options, "split_dir", "hmdb51/testTrainMulti_7030_splits")
    split = int(options.pop("split", 1))
    train = formats.read_hmdb51_split(split_dir, videos, split, "train")
    test = formats.read_hmdb51_split(split_dir, videos, split, "test")
    return Benchmark("hmdb51", "class", train, test, classes=sorted({r.label for r in train}))


def _k400(root: Path, options: dict) -> Benchmark:
    videos = _path(root, options, "video_dir", "k400/videos")
    ann = _path(root, options, "annotation_dir", "k400/annotations")
    train = formats.read_kinetics_csv(ann / "train.csv", videos / "train")
    test = formats.read_kinetics_csv(ann / "validate.csv", videos / "val")
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
