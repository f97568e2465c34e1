"""Readers (and writers) for each data set's annotation files, in the form their authors release them.

Every reader maps its format to the record types of ``evilm.data.records``.
Errors name the file and the row (or key): a missing column, an empty caption,
an answer index out of range. A video is not opened here; the path is resolved
(trying the extensions people convert to, e.g. ``.avi`` -> ``.mp4``) and a
missing file is left for the loader to skip and count, because partial copies
of WebVid-style data sets are normal.

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
  ``{qid, clip_name, options, answer}``.
- TGIF-QA: ``{Train,Test}_{action,transition,frameqa,count}_question.csv``,
  tab-separated despite the name; Action/Transition have options ``a1..a5`` and
  ``answer`` is an option index; FrameQA's ``answer`` is a word and ``type`` 0-3 is
  object/number/color/location; Count's answer is a number.
- DiDeMo: ``{train,val,test}_data.json``, a list of ``{annotation_id, description,
  video, times, ...}``; retrieval uses one paragraph per video (its descriptions in
  moment order).
- HMDB51: ``testTrainMulti_7030_splits/{class}_test_split{1,2,3}.txt``, lines
  ``{video}.avi {0|1|2}`` (1 train, 2 test, 0 unused); videos at ``{class}/{video}``.
- Kinetics-400: ``{train,validate,test}.csv`` -- ``label, youtube_id, time_start,
  time_end, split``; videos at ``[{split}/]{label}/{youtube_id}_{start:06d}_{end:06d}.mp4``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from evilm.config import close_match
from evilm.data.records import ClassItem, DataError, MCItem, QAItem, VideoText

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".gif", ".mov", ".m4v")


# --- helpers -----------------------------------------------------------------------------------


def resolve_video(*candidates: Path) -> Path:
    """The first candidate that exists, also trying other video extensions; else the first candidate.

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


def _where(path: Path, row: int | str | None) -> str:
    """'file, row 12' for a table line, 'file, annotations[3]' for a JSON entry."""
    if row is None:
        return f"{path}"
    return f"{path}, row {row}" if isinstance(row, int) else f"{path}, {row}"


def _require_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    return path


def _read_table(path: Path, columns: Sequence[str], sep: str = ",", what: str = "annotation file") -> pd.DataFrame:
    """A CSV/TSV as strings, with a clear error for any missing column (extra columns are allowed)."""
    path = _require_file(path, what)
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse as {'tab' if sep == chr(9) else 'comma'}-separated table: {err}") from None
    table.columns = [str(c).strip() for c in table.columns]
    for column in columns:
        if column not in table.columns:
            found = ", ".join(table.columns)
            raise DataError(f"{path}: missing column '{column}'{close_match(column, table.columns)}; "
                            f"the file has: {found}")
    return table


def _rows(table: pd.DataFrame) -> Iterable[tuple[int, dict[str, str]]]:
    """(file line number, row) pairs; line 1 is the header."""
    for i, row in enumerate(table.to_dict("records")):
        yield i + 2, row


def _text(path: Path, row: int | str, value: Any, field: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise DataError(f"{_where(path, row)}: empty {field}")
    return text


def _load_json(path: Path, what: str = "annotation file") -> Any:
    path = _require_file(path, what)
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def _key(path: Path, row: int | str, item: Any, key: str) -> Any:
    if not isinstance(item, dict):
        raise DataError(f"{_where(path, row)}: expected an object, got {type(item).__name__}")
    if key not in item:
        raise DataError(f"{_where(path, row)}: missing key '{key}'{close_match(key, item)}; "
                        f"the entry has: {', '.join(map(str, item))}")
    return item[key]


def _json_list(path: Path, data: Any, what: str = "a list of entries") -> list:
    if not isinstance(data, list):
        raise DataError(f"{path}: expected {what}, got {type(data).__name__}")
    return data


def _read_jsonl(path: Path) -> list[tuple[int, Any]]:
    path = _require_file(path, "annotation file")
    out = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((line_no, json.loads(line)))
        except ValueError as err:
            raise DataError(f"{path}, line {line_no}: not valid JSON ({err})") from None
    return out


def question_type(question: str) -> str:
    """The first word ('what', 'who', 'how', ...): MSRVTT-QA's answer types as ClipBERT derives them."""
    words = question.strip().lower().split()
    return words[0] if words else ""


# --- WebVid ------------------------------------------------------------------------------------

WEBVID_COLUMNS = ["videoid", "contentUrl", "duration", "page_dir", "name"]


def read_webvid_csv(csv_path: str | Path, video_dir: str | Path, caption_column: str = "name") -> list[VideoText]:
    csv_path, video_dir = Path(csv_path), Path(video_dir)
    table = _read_table(csv_path, ["videoid", "page_dir", caption_column])
    out = []
    for line, row in _rows(table):
        video_id = _text(csv_path, line, row["videoid"], "videoid")
        page_dir = _text(csv_path, line, row["page_dir"], "page_dir")
        caption = _text(csv_path, line, row[caption_column], f"caption ('{caption_column}')")
        out.append(VideoText(video_id, str(resolve_video(video_dir / page_dir / f"{video_id}.mp4")), caption,
                             source=_where(csv_path, line),
                             meta={"duration": row.get("duration", ""), "url": row.get("contentUrl", "")}))
    return out


def write_webvid_csv(path: Path, rows: Iterable[dict[str, str]]) -> None:
    pd.DataFrame(list(rows), columns=WEBVID_COLUMNS).to_csv(path, index=False)


# --- MSRVTT ------------------------------------------------------------------------------------


def read_msrvtt_captions(json_path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """``MSR_VTT.json`` -> {video id: [(caption, source), ...]} in file order."""
    return _read_caption_list(Path(json_path), "annotations", "image_id")


def read_msrvtt_videodatainfo(json_path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """The authors' ``train_val_videodatainfo.json`` / ``test_videodatainfo.json`` ``sentences``."""
    return _read_caption_list(Path(json_path), "sentences", "video_id")


def _read_caption_list(json_path: Path, list_key: str, id_key: str) -> dict[str, list[tuple[str, str]]]:
    """A top-level list of ``{id_key, caption}`` entries -> {video id: [(caption, source), ...]}."""
    data = _load_json(json_path)
    entries = _json_list(json_path, _key(json_path, "top level", data, list_key), f"'{list_key}' as a list")
    out: dict[str, list[tuple[str, str]]] = {}
    for i, entry in enumerate(entries):
        where = f"{list_key}[{i}]"
        video_id = _text(json_path, where, _key(json_path, where, entry, id_key), id_key)
        caption = _text(json_path, where, _key(json_path, where, entry, "caption"), "caption")
        out.setdefault(video_id, []).append((caption, _where(json_path, where)))
    return out


def read_id_list(path: str | Path) -> list[str]:
    """A split list: one video id per line (``train_list_jsfusion.txt``, ``val_list_jsfusion.txt``)."""
    path = _require_file(Path(path), "split list")
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: the split list is empty")
    return ids


def read_msrvtt_jsfusion_csv(csv_path: str | Path) -> dict[str, tuple[str, str]]:
    """CLIP4Clip's ``MSRVTT_JSFUSION_test.csv``: the one caption per 1k-A test video."""
    csv_path = Path(csv_path)
    table = _read_table(csv_path, ["video_id", "sentence"])
    return {_text(csv_path, line, row["video_id"], "video_id"):
            (_text(csv_path, line, row["sentence"], "sentence"), _where(csv_path, line))
            for line, row in _rows(table)}


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
            text, source = (test_captions or {}).get(video_id, captions[video_id][0])
            out.append(VideoText(video_id, path, text, source=source))
        else:
            out.extend(VideoText(video_id, path, text, source=source) for text, source in captions[video_id])
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
    path.write_text(json.dumps(data))


def write_id_list(path: Path, ids: Iterable[str]) -> None:
    path.write_text("".join(f"{i}\n" for i in ids))


# --- MSRVTT-QA / MSVD-QA (Xu et al.) -----------------------------------------------------------


def _read_xu_qa(json_path: Path, video_of) -> list[QAItem]:
    """``video_of(video_id, where) -> (video name, path)``: the release's ids are numbers."""
    data = _json_list(json_path, _load_json(json_path))
    out = []
    for i, item in enumerate(data):
        where = f"entry {i}"
        question = _text(json_path, where, _key(json_path, where, item, "question"), "question")
        answer = _text(json_path, where, _key(json_path, where, item, "answer"), "answer")
        number = str(_key(json_path, where, item, "video_id"))
        name, path = video_of(number, where)
        meta = {"id": item.get("id", i), "video_number": number}
        if "category_id" in item:
            meta["category_id"] = item["category_id"]
        out.append(QAItem(name, str(path), question, answer, question_type(question),
                          source=_where(json_path, where), meta=meta))
    return out


def read_msrvtt_qa(json_path: str | Path, video_dir: str | Path) -> list[QAItem]:
    """MSRVTT-QA ``{split}_qa.json``: ``video_id`` N is the video ``video{N}`` (``video{N}.mp4``)."""
    json_path, video_dir = Path(json_path), Path(video_dir)

    def video_of(number: str, where: str) -> tuple[str, Path]:
        name = number if number.startswith("video") else f"video{number}"
        return name, msrvtt_video_path(video_dir, name)

    return _read_xu_qa(json_path, video_of)


def read_youtube_mapping(path: str | Path) -> dict[str, str]:
    """MSVD's ``youtube_mapping.txt``: lines ``{youtube clip name} vid{N}`` -> {"N": clip name}."""
    path = _require_file(Path(path), "youtube_mapping.txt")
    out = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].startswith("vid"):
            raise DataError(f"{path}, line {line_no}: expected '<clip name> vid<N>', got {line!r}")
        out[parts[1].removeprefix("vid")] = parts[0]
    return out


def read_msvd_qa(json_path: str | Path, mapping_path: str | Path, video_dir: str | Path) -> list[QAItem]:
    """MSVD-QA ``{split}_qa.json``: ``video_id`` N -> ``vid{N}`` -> the clip ``YouTubeClips/{name}.avi``."""
    json_path, video_dir = Path(json_path), Path(video_dir)
    mapping = read_youtube_mapping(mapping_path)

    def video_of(number: str, where: str) -> tuple[str, Path]:
        key = number.removeprefix("vid")
        if key not in mapping:
            raise DataError(f"{_where(json_path, where)}: video_id {number} is not in {mapping_path}")
        return mapping[key], resolve_video(video_dir / f"{mapping[key]}.avi")

    return _read_xu_qa(json_path, video_of)


def write_xu_qa_json(path: Path, items: Iterable[dict[str, Any]]) -> None:
    path.write_text(json.dumps(list(items)))


# --- ClipBERT-style JSONL ----------------------------------------------------------------------


def read_clipbert_qa_jsonl(path: str | Path, video_dir: str | Path, ext: str = ".mp4") -> list[QAItem]:
    path, video_dir = Path(path), Path(video_dir)
    out = []
    for line, item in _read_jsonl(path):
        where = f"line {line}"
        video_id = _text(path, where, _key(path, where, item, "video_id"), "video_id")
        question = _text(path, where, _key(path, where, item, "question"), "question")
        answer = _text(path, where, _key(path, where, item, "answer"), "answer")
        answer_type = str(item.get("answer_type") or question_type(question))
        out.append(QAItem(video_id, str(resolve_video(video_dir / f"{video_id}{ext}")), question, answer,
                          answer_type, source=f"{path}, {where}"))
    return out


def read_msrvtt_mc_jsonl(path: str | Path, video_dir: str | Path, ext: str = ".mp4") -> list[MCItem]:
    """MSRVTT multiple choice: ``{qid, clip_name, options, answer}``, answer an index into options."""
    path, video_dir = Path(path), Path(video_dir)
    out = []
    for line, item in _read_jsonl(path):
        where = f"line {line}"
        clip = _text(path, where, _key(path, where, item, "clip_name"), "clip_name")
        options = _key(path, where, item, "options")
        if not isinstance(options, list) or len(options) < 2:
            raise DataError(f"{path}, {where}: 'options' must be a list of at least 2 captions")
        options = [_text(path, where, o, f"option {k}") for k, o in enumerate(options)]
        answer = _index(path, where, _key(path, where, item, "answer"), len(options))
        out.append(MCItem(clip, str(resolve_video(video_dir / f"{clip}{ext}")), options, answer,
                          source=f"{path}, {where}", meta={"qid": item.get("qid", line)}))
    return out


def _index(path: Path, where: str, value: Any, num_options: int) -> int:
    try:
        index = int(str(value).strip())
    except ValueError:
        raise DataError(f"{path}, {where}: answer {value!r} is not an option index") from None
    if not 0 <= index < num_options:
        raise DataError(f"{path}, {where}: answer index {index} is outside 0..{num_options - 1}")
    return index


def write_jsonl(path: Path, items: Iterable[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))


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
    table = _read_table(csv_path, required, sep="\t")
    out = []
    for line, row in _rows(table):
        gif = _text(csv_path, line, row["gif_name"], "gif_name")
        path = str(resolve_video(video_dir / f"{gif}.gif"))
        question = _text(csv_path, line, row["question"], "question")
        meta = {"vid_id": row.get("vid_id", ""), "key": row.get("key", "")}
        source = _where(csv_path, line)
        if task in ("action", "transition"):
            options = [_text(csv_path, line, row[f"a{k}"], f"option a{k}") for k in range(1, 6)]
            answer = _index(csv_path, f"row {line}", row["answer"], 5)
            out.append(MCItem(gif, path, options, answer, question=question, source=source, meta=meta))
        elif task == "frameqa":
            kind = str(row["type"]).strip()
            if kind not in FRAMEQA_TYPE_NAMES:
                raise DataError(f"{source}: FrameQA type {kind!r} is not one of 0, 1, 2, 3")
            meta["description"] = row.get("description", "")
            out.append(QAItem(gif, path, question, _text(csv_path, line, row["answer"], "answer"),
                              FRAMEQA_TYPE_NAMES[kind], source=source, meta=meta))
        else:
            answer = _text(csv_path, line, row["answer"], "answer")
            if not answer.isdigit():
                raise DataError(f"{source}: Count answer {answer!r} is not a number")
            out.append(QAItem(gif, path, question, answer, "count", source=source, meta=meta))
    return out


def write_tgif_csv(path: Path, task: str, rows: Iterable[dict[str, Any]]) -> None:
    pd.DataFrame(list(rows), columns=TGIF_COLUMNS[task]).to_csv(path, sep="\t", index=False)


# --- DiDeMo ------------------------------------------------------------------------------------


def read_didemo(json_path: str | Path, video_dir: str | Path) -> list[VideoText]:
    """One paragraph per video: its descriptions ordered by moment start (then file order)."""
    json_path, video_dir = Path(json_path), Path(video_dir)
    data = _json_list(json_path, _load_json(json_path))
    moments: dict[str, list[tuple[float, int, str, list]]] = {}
    sources: dict[str, str] = {}
    for i, item in enumerate(data):
        where = f"entry {i}"
        video = _text(json_path, where, _key(json_path, where, item, "video"), "video")
        description = _text(json_path, where, _key(json_path, where, item, "description"), "description")
        times = _key(json_path, where, item, "times")
        try:
            start = min(float(t[0]) for t in times) if times else 0.0
        except (TypeError, ValueError, IndexError):
            raise DataError(f"{_where(json_path, where)}: 'times' must be a list of [start, end] pairs") from None
        moments.setdefault(video, []).append((start, i, description, times))
        sources.setdefault(video, _where(json_path, where))
    out = []
    for video, items in moments.items():
        items.sort(key=lambda m: (m[0], m[1]))
        paragraph = " ".join(d if d.rstrip().endswith(".") else f"{d}." for _, _, d, _ in items)
        video_id = Path(video).stem
        out.append(VideoText(video_id, str(resolve_video(video_dir / video)), paragraph, source=sources[video],
                             meta={"moments": [(d, t) for _, _, d, t in items]}))
    return out


# --- HMDB51 ------------------------------------------------------------------------------------


def read_hmdb51_split(split_dir: str | Path, video_dir: str | Path, split: int = 1, subset: str = "train") -> list[
        ClassItem]:
    """Items of one official split: ``{class}_test_split{split}.txt`` lines marked 1 (train) or 2 (test)."""
    split_dir, video_dir = Path(split_dir), Path(video_dir)
    if subset not in ("train", "test"):
        raise DataError(f"HMDB51 subset must be 'train' or 'test', got {subset!r}")
    mark = "1" if subset == "train" else "2"
    files = sorted(split_dir.glob(f"*_test_split{split}.txt"))
    if not files:
        raise DataError(f"{split_dir}: no HMDB51 split files '*_test_split{split}.txt'")
    out = []
    for path in files:
        label = path.name[: -len(f"_test_split{split}.txt")]
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{path}, line {line_no}: expected '<video>.avi <0|1|2>', got {line!r}")
            if parts[1] == mark:
                video = parts[0]
                out.append(ClassItem(Path(video).stem, str(resolve_video(video_dir / label / video)), label,
                                     source=f"{path}, line {line_no}"))
    return out


# --- Kinetics-400 ------------------------------------------------------------------------------

KINETICS_COLUMNS = ["label", "youtube_id", "time_start", "time_end", "split"]


def kinetics_file_name(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{start:06d}_{end:06d}.mp4"


def read_kinetics_csv(csv_path: str | Path, video_dir: str | Path) -> list[ClassItem]:
    """A Kinetics CSV; the clip is looked for under ``{label}/`` (spaces or underscores) or flat."""
    csv_path, video_dir = Path(csv_path), Path(video_dir)
    table = _read_table(csv_path, ["label", "youtube_id", "time_start", "time_end"])
    out = []
    for line, row in _rows(table):
        label = _text(csv_path, line, row["label"], "label")
        youtube_id = _text(csv_path, line, row["youtube_id"], "youtube_id")
        try:
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
        except ValueError:
            raise DataError(f"{_where(csv_path, line)}: time_start/time_end must be numbers") from None
        name = kinetics_file_name(youtube_id, start, end)
        path = resolve_video(video_dir / label / name, video_dir / label.replace(" ", "_") / name, video_dir / name)
        out.append(ClassItem(name.removesuffix(".mp4"), str(path), label, source=_where(csv_path, line),
                             meta={"split": row.get("split", "")}))
    return out


def write_kinetics_csv(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    pd.DataFrame(list(rows), columns=KINETICS_COLUMNS).to_csv(path, index=False)
