"""Readers (and writers) for each data set's annotation files, in the form their authors release them.

Every reader maps its format to the record types of ``evilm.data.records``.
Errors name the file and the line (or entry): a missing column, a row with more
fields than the header, a byte that is not UTF-8, an empty caption, a video id
that is not a number, an answer index out of range (``evilm.data.annotation_io``
does the reading). A video is not opened here; the path is resolved (trying the
names download and conversion tools give clips, e.g. ``.avi`` -> ``.mp4``, or
DiDeMo's ``{video}.mp4``) and a missing file is left for the loader to skip
and count, because partial copies of WebVid-style data sets are normal.

Formats (author release first, then the codebases' preprocessed forms):
- WebVid: ``results_2M_train.csv`` -- ``videoid, contentUrl, duration, page_dir, name``;
  video at ``{page_dir}/{videoid}.mp4``.
- MSRVTT: ``MSR_VTT.json`` (``annotations``: ``image_id``, ``caption``) with the
  ``train_list_jsfusion.txt`` / ``val_list_jsfusion.txt`` 9k / 1k-A lists (the 7k
  option is ``train_list_miech.txt``); the authors' ``train_val_videodatainfo.json``
  (``sentences``: ``video_id``, ``caption``); CLIP4Clip's ``MSRVTT_JSFUSION_test.csv``
  (``key, vid_key, video_id, sentence``) for the standard one caption per test video.
- MSRVTT-QA / MSVD-QA (Xu et al. 2017): ``{train,val,test}_qa.json``, a list of
  ``{answer, id, question, video_id[, category_id]}``; MSVD maps ``vid{N}`` to YouTube
  clip names with ``youtube_mapping.txt``.
- ClipBERT-style JSONL: QA ``{video_id, question, answer, answer_type}``; MSRVTT-MC
  ``{qid, clip_name, options, answer}``; or JSFusion's ``MSR_MC_test.csv`` (tab-separated:
  ``key, vid_key, video_id, a1..a5, answer``, answer an index 0-4).
- TGIF-QA: ``{Train,Test}_{action,transition,frameqa,count}_question.csv``,
  tab-separated despite the name; Action/Transition have options ``a1..a5`` and
  ``answer`` is an option index; FrameQA's ``answer`` is a word and ``type`` 0-3 is
  object/number/color/location; Count's answer is a number.
- DiDeMo: ``{train,val,test}_data.json``, a list of ``{annotation_id, description,
  video, times, ...}``; retrieval uses one paragraph per video (its descriptions in
  moment order). Clips as the authors' download script saves them (``{video}.mp4``) or converted
  (``{stem}.mp4``).
- HMDB51: ``testTrainMulti_7030_splits/{class}_test_split{1,2,3}.txt``, lines
  ``{video}.avi {0|1|2}`` (1 train, 2 test, 0 unused); videos at ``{class}/{video}``.
- Kinetics-400: ``{train,validate,test}.csv`` (``val.csv`` in the CVDF release,
  ``kinetics_{train,val}.csv`` in MMAction's) -- ``label, youtube_id, time_start,
  time_end, split``; videos at ``[{split}/]{label}/{youtube_id}_{start:06d}_{end:06d}.mp4``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from evilm.config import close_match
from evilm.data import annotation_io as ann
from evilm.data.records import ClassItem, DataError, MCItem, QAItem, VideoText

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".gif", ".mov", ".m4v")


# --- helpers -----------------------------------------------------------------------------------


def resolve_video(*candidates: Path) -> Path:
    """The first candidate that exists, also trying the same stem in other containers (``clip.avi``
    converted to ``clip.mp4``); else the first candidate.

    Returning the expected path (not raising) lets the loader skip and count missing clips.
    """
    for path in candidates:
        if path.is_file():
            return path
    for path in candidates:
        for ext in VIDEO_EXTENSIONS:
            alt = path.with_suffix(ext)
            if alt.is_file():
                return alt
    return candidates[0]


def question_type(question: str) -> str:
    """The first word ('what', 'who', 'how', ...): MSRVTT-QA's answer types as ClipBERT derives them."""
    words = question.strip().lower().split()
    return words[0] if words else ""


# --- WebVid ------------------------------------------------------------------------------------

WEBVID_COLUMNS = ["videoid", "contentUrl", "duration", "page_dir", "name"]


def read_webvid_csv(csv_path: str | Path, video_dir: str | Path, caption_column: str = "name") -> list[VideoText]:
    csv_path, video_dir = Path(csv_path), Path(video_dir)
    out = []
    for line, row in ann.read_table(csv_path, ["videoid", "page_dir", caption_column]):
        video_id = ann.text(csv_path, line, row["videoid"], "videoid")
        page_dir = ann.text(csv_path, line, row["page_dir"], "page_dir")
        caption = ann.text(csv_path, line, row[caption_column], f"caption ('{caption_column}')")
        out.append(VideoText(video_id, str(resolve_video(video_dir / page_dir / f"{video_id}.mp4")), caption,
                             source=ann.where(csv_path, line),
                             meta={"duration": row.get("duration", ""), "url": row.get("contentUrl", "")}))
    return out


def write_webvid_csv(path: Path, rows: Iterable[dict[str, str]]) -> None:
    pd.DataFrame(list(rows), columns=WEBVID_COLUMNS).to_csv(path, index=False, encoding="utf-8")


# --- MSRVTT ------------------------------------------------------------------------------------


def read_msrvtt_captions(json_path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """``MSR_VTT.json`` -> {video id: [(caption, source), ...]} in file order."""
    return _read_caption_list(Path(json_path), "annotations", "image_id")


def read_msrvtt_videodatainfo(json_path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """The authors' ``train_val_videodatainfo.json`` / ``test_videodatainfo.json`` ``sentences``."""
    return _read_caption_list(Path(json_path), "sentences", "video_id")


def _read_caption_list(json_path: Path, list_key: str, id_key: str) -> dict[str, list[tuple[str, str]]]:
    """A top-level list of ``{id_key, caption}`` entries -> {video id: [(caption, source), ...]}."""
    data = ann.load_json(json_path)
    entries = ann.json_list(json_path, ann.key(json_path, "top level", data, list_key), f"'{list_key}' as a list")
    out: dict[str, list[tuple[str, str]]] = {}
    for i, entry in enumerate(entries):
        place = f"{list_key}[{i}]"
        video_id = ann.text(json_path, place, ann.key(json_path, place, entry, id_key), id_key)
        caption = ann.text(json_path, place, ann.key(json_path, place, entry, "caption"), "caption")
        out.setdefault(video_id, []).append((caption, ann.where(json_path, place)))
    return out


def read_id_list(path: str | Path) -> list[str]:
    """A split list: one video id per line (``train_list_jsfusion.txt``, ``val_list_jsfusion.txt``)."""
    path = Path(path)
    ids = []
    for line_no, line in ann.read_lines(path, "split list"):
        if len(line.split()) != 1:
            raise DataError(f"{path}, line {line_no}: expected one video id, got {line!r}")
        ids.append(line)
    if not ids:
        raise DataError(f"{path}: the split list is empty")
    return ids


def read_msrvtt_jsfusion_csv(csv_path: str | Path) -> dict[str, tuple[str, str]]:
    """CLIP4Clip's ``MSRVTT_JSFUSION_test.csv``: the one caption per 1k-A test video."""
    csv_path = Path(csv_path)
    return {ann.text(csv_path, line, row["video_id"], "video_id"):
            (ann.text(csv_path, line, row["sentence"], "sentence"), ann.where(csv_path, line))
            for line, row in ann.read_table(csv_path, ["video_id", "sentence"])}


def msrvtt_video_path(video_dir: Path, video_id: str) -> Path:
    return resolve_video(video_dir / f"{video_id}.mp4")


def read_msrvtt_retrieval(
    captions: dict[str, list[tuple[str, str]]],
    video_ids: Sequence[str],
    video_dir: str | Path,
    one_caption: bool,
    list_path: str | Path = "split list",
    test_captions: dict[str, tuple[str, str]] | None = None,
) -> list[VideoText]:
    """Records for the videos of a split list: all captions (training) or one per video (1k-A test).

    The test caption is the JSFusion one when ``test_captions`` is given, else the first in the file.
    """
    video_dir = Path(video_dir)
    out = []
    for video_id in video_ids:
        if video_id not in captions:
            raise DataError(f"{list_path}: video '{video_id}' has no caption in the annotation file")
        path = str(msrvtt_video_path(video_dir, video_id))
        if one_caption:
            caption, source = (test_captions or {}).get(video_id, captions[video_id][0])
            out.append(VideoText(video_id, path, caption, source=source))
        else:
            out.extend(VideoText(video_id, path, caption, source=source) for caption, source in captions[video_id])
    return out


def write_msrvtt_json(path: Path, captions: Iterable[tuple[str, str]]) -> None:
    """COCO-style ``MSR_VTT.json`` from (video id, caption) pairs."""
    captions = list(captions)
    videos = sorted({v for v, _ in captions}, key=lambda v: int(v.removeprefix("video")))
    data = {
        "info": {"description": "generated by evilm"},
        "images": [{"id": v} for v in videos],
        "annotations": [{"image_id": v, "caption": c, "id": i} for i, (v, c) in enumerate(captions)],
    }
    path.write_text(json.dumps(data), encoding="utf-8")


def write_id_list(path: Path, ids: Iterable[str]) -> None:
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")


# --- MSRVTT-QA / MSVD-QA (Xu et al.) -----------------------------------------------------------


def _read_xu_qa(json_path: Path, video_of) -> list[QAItem]:
    """``video_of(number, place) -> (video name, path)``: the release's ids are integers."""
    data = ann.json_list(json_path, ann.load_json(json_path))
    out = []
    for i, item in enumerate(data):
        place = f"entry {i}"
        question = ann.text(json_path, place, ann.key(json_path, place, item, "question"), "question")
        answer = ann.text(json_path, place, ann.key(json_path, place, item, "answer"), "answer")
        number = ann.video_number(json_path, place, ann.key(json_path, place, item, "video_id"),
                                  prefixes=("video", "vid"))
        name, path = video_of(number, place)
        meta = {"id": item.get("id", i), "video_number": number}
        if "category_id" in item:
            meta["category_id"] = item["category_id"]
        out.append(QAItem(name, str(path), question, answer, question_type(question),
                          source=ann.where(json_path, place), meta=meta))
    return out


def read_msrvtt_qa(json_path: str | Path, video_dir: str | Path) -> list[QAItem]:
    """MSRVTT-QA ``{split}_qa.json``: ``video_id`` N is the video ``video{N}`` (``video{N}.mp4``)."""
    json_path, video_dir = Path(json_path), Path(video_dir)

    def video_of(number: str, place: str) -> tuple[str, Path]:
        return f"video{number}", msrvtt_video_path(video_dir, f"video{number}")

    return _read_xu_qa(json_path, video_of)


def read_youtube_mapping(path: str | Path) -> dict[str, str]:
    """MSVD's ``youtube_mapping.txt``: lines ``{youtube clip name} vid{N}`` -> {"N": clip name}."""
    path = Path(path)
    out: dict[str, str] = {}
    for line_no, line in ann.read_lines(path, "youtube_mapping.txt"):
        parts = line.split()
        if len(parts) != 2 or not parts[1].startswith("vid"):
            raise DataError(f"{path}, line {line_no}: expected '<clip name> vid<N>', got {line!r}")
        number = ann.video_number(path, line_no, parts[1], prefixes=("vid",))
        if out.get(number, parts[0]) != parts[0]:
            raise DataError(f"{path}, line {line_no}: vid{number} is mapped twice "
                            f"('{out[number]}' and '{parts[0]}')")
        out[number] = parts[0]
    return out


def read_msvd_qa(json_path: str | Path, mapping_path: str | Path, video_dir: str | Path) -> list[QAItem]:
    """MSVD-QA ``{split}_qa.json``: ``video_id`` N -> ``vid{N}`` -> the clip ``YouTubeClips/{name}.avi``."""
    json_path, video_dir = Path(json_path), Path(video_dir)
    mapping = read_youtube_mapping(mapping_path)

    def video_of(number: str, place: str) -> tuple[str, Path]:
        if number not in mapping:
            raise DataError(f"{ann.where(json_path, place)}: video_id {number} is not in {mapping_path}")
        return mapping[number], resolve_video(video_dir / f"{mapping[number]}.avi")

    return _read_xu_qa(json_path, video_of)


def write_xu_qa_json(path: Path, items: Iterable[dict[str, Any]]) -> None:
    path.write_text(json.dumps(list(items)), encoding="utf-8")


# --- ClipBERT-style JSONL and JSFusion's multiple choice ---------------------------------------


def read_clipbert_qa_jsonl(path: str | Path, video_dir: str | Path, ext: str = ".mp4") -> list[QAItem]:
    path, video_dir = Path(path), Path(video_dir)
    out = []
    for line, item in ann.read_jsonl(path):
        video_id = ann.text(path, line, ann.key(path, line, item, "video_id"), "video_id")
        question = ann.text(path, line, ann.key(path, line, item, "question"), "question")
        answer = ann.text(path, line, ann.key(path, line, item, "answer"), "answer")
        answer_type = str(item.get("answer_type") or question_type(question))
        out.append(QAItem(video_id, str(resolve_video(video_dir / f"{video_id}{ext}")), question, answer,
                          answer_type, source=ann.where(path, line)))
    return out


def read_msrvtt_mc_jsonl(path: str | Path, video_dir: str | Path, ext: str = ".mp4") -> list[MCItem]:
    """MSRVTT multiple choice: ``{qid, clip_name, options, answer}``, answer an index into options."""
    path, video_dir = Path(path), Path(video_dir)
    out = []
    for line, item in ann.read_jsonl(path):
        clip = ann.text(path, line, ann.key(path, line, item, "clip_name"), "clip_name")
        options = ann.key(path, line, item, "options")
        if not isinstance(options, list) or len(options) < 2:
            raise DataError(f"{ann.where(path, line)}: 'options' must be a list of at least 2 captions")
        options = [ann.text(path, line, o, f"option {k}") for k, o in enumerate(options)]
        answer = _index(path, line, ann.key(path, line, item, "answer"), len(options))
        out.append(MCItem(clip, str(resolve_video(video_dir / f"{clip}{ext}")), options, answer,
                          source=ann.where(path, line), meta={"qid": item.get("qid", line)}))
    return out


MSRVTT_MC_CSV_COLUMNS = ["key", "vid_key", "video_id", "a1", "a2", "a3", "a4", "a5", "answer"]


def read_msrvtt_mc_csv(csv_path: str | Path, video_dir: str | Path, ext: str = ".mp4") -> list[MCItem]:
    """JSFusion's ``MSR_MC_test.csv`` (tab-separated): ``key, vid_key, video_id, a1..a5, answer``.

    ``answer`` is the index (0-4) of the right caption among ``a1..a5``; the video is
    ``video_id`` (``video7010``), or ``vid_key`` (``msr7010``) where that column is absent.
    """
    csv_path, video_dir = Path(csv_path), Path(video_dir)
    out = []
    for line, row in ann.read_table(csv_path, ["a1", "a2", "a3", "a4", "a5", "answer"], sep="\t"):
        column = "video_id" if "video_id" in row else "vid_key"
        if column not in row:
            raise DataError(f"{csv_path}: missing column 'video_id' (or 'vid_key'); "
                            f"the file has: {', '.join(row)}")
        video_id = f"video{ann.video_number(csv_path, line, row[column], prefixes=('video', 'msr'))}"
        options = [ann.text(csv_path, line, row[f"a{k}"], f"option a{k}") for k in range(1, 6)]
        answer = _index(csv_path, line, row["answer"], 5)
        out.append(MCItem(video_id, str(msrvtt_video_path(video_dir, video_id)), options, answer,
                          source=ann.where(csv_path, line), meta={"key": row.get("key", "")}))
    return out


def _index(path: Path, place: int | str, value: Any, num_options: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise DataError(f"{ann.where(path, place)}: answer {value!r} is not an option index")
    index = int(str(value).strip())
    if not 0 <= index < num_options:
        raise DataError(f"{ann.where(path, place)}: answer index {index} is outside 0..{num_options - 1}")
    return index


def write_jsonl(path: Path, items: Iterable[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")


def write_msrvtt_mc_csv(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    pd.DataFrame(list(rows), columns=MSRVTT_MC_CSV_COLUMNS).to_csv(path, sep="\t", index=False, encoding="utf-8")


# --- TGIF-QA -----------------------------------------------------------------------------------

TGIF_TASKS = ("action", "transition", "frameqa", "count")
TGIF_COLUMNS = {
    "action": ["gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"],
    "transition": ["gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"],
    "frameqa": ["gif_name", "question", "answer", "type", "vid_id", "key", "description"],
    "count": ["gif_name", "question", "answer", "vid_id", "key"],
}
FRAMEQA_TYPE_NAMES = {"0": "object", "1": "number", "2": "color", "3": "location"}


def tgif_file_name(task: str, split: str) -> str:
    """``Train_action_question.csv`` etc. (``split``: 'train' or 'test')."""
    return f"{split.capitalize()}_{task}_question.csv"


def read_tgif_qa(csv_path: str | Path, task: str, video_dir: str | Path) -> list[MCItem] | list[QAItem]:
    """One TGIF-QA question file; Action/Transition -> ``MCItem``, FrameQA/Count -> ``QAItem``."""
    if task not in TGIF_TASKS:
        raise DataError(f"unknown TGIF-QA task {task!r}{close_match(task, TGIF_TASKS)}; use one of {TGIF_TASKS}")
    csv_path, video_dir = Path(csv_path), Path(video_dir)
    required = [c for c in TGIF_COLUMNS[task] if c not in ("vid_id", "key", "description")]
    out = []
    for line, row in ann.read_table(csv_path, required, sep="\t"):
        gif = ann.text(csv_path, line, row["gif_name"], "gif_name")
        path = str(resolve_video(video_dir / f"{gif}.gif"))
        question = ann.text(csv_path, line, row["question"], "question")
        meta = {"vid_id": row.get("vid_id", ""), "key": row.get("key", "")}
        source = ann.where(csv_path, line)
        if task in ("action", "transition"):
            options = [ann.text(csv_path, line, row[f"a{k}"], f"option a{k}") for k in range(1, 6)]
            answer = _index(csv_path, line, row["answer"], 5)
            out.append(MCItem(gif, path, options, answer, question=question, source=source, meta=meta))
        elif task == "frameqa":
            kind = str(row["type"]).strip()
            if kind not in FRAMEQA_TYPE_NAMES:
                raise DataError(f"{source}: FrameQA type {kind!r} is not one of 0, 1, 2, 3")
            meta["description"] = row.get("description", "")
            out.append(QAItem(gif, path, question, ann.text(csv_path, line, row["answer"], "answer"),
                              FRAMEQA_TYPE_NAMES[kind], source=source, meta=meta))
        else:
            answer = ann.text(csv_path, line, row["answer"], "answer")
            if not answer.isdigit():
                raise DataError(f"{source}: Count answer {answer!r} is not a number")
            out.append(QAItem(gif, path, question, answer, "count", source=source, meta=meta))
    return out


def write_tgif_csv(path: Path, task: str, rows: Iterable[dict[str, Any]]) -> None:
    pd.DataFrame(list(rows), columns=TGIF_COLUMNS[task]).to_csv(path, sep="\t", index=False, encoding="utf-8")


# --- DiDeMo ------------------------------------------------------------------------------------


def _didemo_times(path: Path, place: str, times: Any) -> list[list[float]]:
    """DiDeMo's ``times``: a non-empty list of [start, end] segment pairs (one per annotator)."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if (not isinstance(times, list) or not times
            or not all(isinstance(t, list) and len(t) == 2 and all(map(number, t)) and t[0] <= t[1]
                       for t in times)):
        raise DataError(f"{ann.where(path, place)}: 'times' must be a non-empty list of [start, end] pairs "
                        f"with start <= end, got {json.dumps(times)[:80]}")
    return times


def read_didemo(json_path: str | Path, video_dir: str | Path) -> list[VideoText]:
    """One paragraph per video: its descriptions ordered by moment start (then file order)."""
    json_path, video_dir = Path(json_path), Path(video_dir)
    data = ann.json_list(json_path, ann.load_json(json_path))
    moments: dict[str, list[tuple[float, int, str, list]]] = {}
    sources: dict[str, str] = {}
    for i, item in enumerate(data):
        place = f"entry {i}"
        video = ann.text(json_path, place, ann.key(json_path, place, item, "video"), "video")
        description = ann.text(json_path, place, ann.key(json_path, place, item, "description"), "description")
        times = _didemo_times(json_path, place, ann.key(json_path, place, item, "times"))
        moments.setdefault(video, []).append((min(float(t[0]) for t in times), i, description, times))
        sources.setdefault(video, ann.where(json_path, place))
    out = []
    for video, items in moments.items():
        items.sort(key=lambda m: (m[0], m[1]))
        paragraph = " ".join(d if d.rstrip().endswith(".") else f"{d}." for _, _, d, _ in items)
        video_id = Path(video).stem
        # as released (Flickr), as the authors' AWS download script saves it ({video}.mp4), or converted
        path = resolve_video(video_dir / video, video_dir / f"{video}.mp4")
        out.append(VideoText(video_id, str(path), paragraph, source=sources[video],
                             meta={"moments": [(d, t) for _, _, d, t in items]}))
    return out


# --- HMDB51 ------------------------------------------------------------------------------------


def hmdb51_split_files(split_dir: str | Path, split: int) -> list[Path]:
    """The official ``{class}_test_split{split}.txt`` files, one per class."""
    return sorted(Path(split_dir).glob(f"*_test_split{split}.txt"))


def read_hmdb51_split(split_dir: str | Path, video_dir: str | Path, split: int = 1, subset: str = "train") -> list[
        ClassItem]:
    """Items of one official split: ``{class}_test_split{split}.txt`` lines marked 1 (train) or 2 (test)."""
    split_dir, video_dir = Path(split_dir), Path(video_dir)
    if subset not in ("train", "test"):
        raise DataError(f"HMDB51 subset must be 'train' or 'test', got {subset!r}")
    mark = "1" if subset == "train" else "2"
    files = hmdb51_split_files(split_dir, split)
    if not files:
        raise DataError(f"{split_dir}: no HMDB51 split files '*_test_split{split}.txt'")
    out = []
    for path in files:
        label = path.name[: -len(f"_test_split{split}.txt")]
        for line_no, line in ann.read_lines(path, "split file"):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{path}, line {line_no}: expected '<video>.avi <0|1|2>', got {line!r}")
            if parts[1] == mark:
                video = parts[0]
                out.append(ClassItem(Path(video).stem, str(resolve_video(video_dir / label / video)), label,
                                     source=ann.where(path, line_no)))
    return out


# --- Kinetics-400 ------------------------------------------------------------------------------

KINETICS_COLUMNS = ["label", "youtube_id", "time_start", "time_end", "split"]


def kinetics_file_name(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{start:06d}_{end:06d}.mp4"


def read_kinetics_csv(csv_path: str | Path, video_dir: str | Path) -> list[ClassItem]:
    """A Kinetics CSV; the clip is looked for under ``{label}/`` (spaces or underscores) or flat."""
    csv_path, video_dir = Path(csv_path), Path(video_dir)
    out = []
    for line, row in ann.read_table(csv_path, ["label", "youtube_id", "time_start", "time_end"]):
        label = ann.text(csv_path, line, row["label"], "label")
        youtube_id = ann.text(csv_path, line, row["youtube_id"], "youtube_id")
        try:
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
        except ValueError:
            raise DataError(f"{ann.where(csv_path, line)}: time_start/time_end must be numbers") from None
        name = kinetics_file_name(youtube_id, start, end)
        path = resolve_video(video_dir / label / name, video_dir / label.replace(" ", "_") / name, video_dir / name)
        out.append(ClassItem(name.removesuffix(".mp4"), str(path), label, source=ann.where(csv_path, line),
                             meta={"split": row.get("split", "")}))
    return out


def write_kinetics_csv(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    pd.DataFrame(list(rows), columns=KINETICS_COLUMNS).to_csv(path, index=False, encoding="utf-8")
