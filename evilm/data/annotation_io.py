"""Reading annotation files so that every problem is an error naming the file and the line.

The data-set readers (``evilm.data.formats``) build on these: text decoded as UTF-8 (a
byte-order mark is dropped, a bad byte is reported with its line and a way to convert the
file), CSV/TSV tables whose every row must have as many fields as the header (so a stray
separator in a caption is an error, never a silent shift of the columns), JSON and JSON
lines, and the checks for one field of an entry (present, non-empty text, an integer id).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evilm.config import close_match
from evilm.data.records import DataError

ENCODING_HINT = "convert it to UTF-8, e.g. `iconv -f latin1 -t utf-8 OLD > NEW` (if it is Latin-1)"


def require_file(path: str | Path, what: str = "annotation file") -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    return path


def where(path: Path, place: int | str | None) -> str:
    """'file, line 12' for a line of a text file, 'file, annotations[3]' for a JSON entry."""
    if place is None:
        return f"{path}"
    return f"{path}, line {place}" if isinstance(place, int) else f"{path}, {place}"


def _refuse_utf16(path: Path, head: bytes) -> None:
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{path}: the file is UTF-16 text; save it as UTF-8, e.g. "
                        f"`iconv -f utf-16 -t utf-8 OLD > NEW`")


def read_text(path: str | Path, what: str = "annotation file") -> str:
    """The file as UTF-8 text without a byte-order mark; a byte that is not UTF-8 is a ``DataError``."""
    path = require_file(path, what)
    data = path.read_bytes()
    _refuse_utf16(path, data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
                        f"{err.start}); {ENCODING_HINT}") from None


def read_lines(path: str | Path, what: str = "annotation file") -> list[tuple[int, str]]:
    """(line number, stripped line) for every non-blank line."""
    return [(i, line.strip()) for i, line in enumerate(read_text(path, what).splitlines(), start=1) if line.strip()]


def load_json(path: str | Path, what: str = "annotation file") -> Any:
    path = Path(path)
    text = read_text(path, what)
    try:
        return json.loads(text)
    except ValueError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def read_jsonl(path: str | Path) -> list[tuple[int, Any]]:
    """(line number, entry) for every non-blank line of a JSON-lines file."""
    path = Path(path)
    out = []
    for line_no, line in read_lines(path):
        try:
            out.append((line_no, json.loads(line)))
        except ValueError as err:
            raise DataError(f"{path}, line {line_no}: not valid JSON ({err})") from None
    return out


def read_table(path: str | Path, columns: Sequence[str], sep: str = ",",
               what: str = "annotation file") -> Iterator[tuple[int, dict[str, str]]]:
    """A CSV/TSV file with a header line -> (line number, {column: text}) for each row, as read.

    Every row must have exactly as many fields as the header: a row with one more (a separator
    inside an unquoted text field) or one fewer is an error naming the line, because reading
    it anyway would move every later field into the wrong column. Extra columns are allowed;
    each of ``columns`` must be there. The file is streamed (WebVid's is hundreds of MB).
    """
    path = require_file(path, what)
    with open(path, "rb") as handle:
        _refuse_utf16(path, handle.read(2))
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            yield from _table_rows(path, csv.reader(handle, delimiter=sep, strict=True), columns, sep)
    except UnicodeDecodeError:
        read_text(path, what)  # raises, naming the line of the first bad byte
        raise


def _table_rows(path: Path, reader, columns: Sequence[str], sep: str) -> Iterator[tuple[int, dict[str, str]]]:
    kind = "tab" if sep == "\t" else "comma"
    header: list[str] | None = None
    start = 1  # the line the next record starts on (a quoted field may hold line breaks)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            problem = ("a quote opened here is never closed" if "end of data" in str(err)
                       else f"cannot read it as {kind}-separated text ({err})")
            raise DataError(f"{path}, line {start}: {problem}") from None
        line, start = start, reader.line_num + 1
        if len(fields) <= 1 and not "".join(fields).strip():
            continue  # a blank line
        if header is None:
            header = [f.strip() for f in fields]
            _check_header(path, header, columns)
            continue
        if len(fields) != len(header):
            more = len(fields) > len(header)
            raise DataError(
                f"{path}, line {line}: {len(fields)} fields where the header has {len(header)} "
                f"({', '.join(header)}); reading it would shift the columns"
                + (f" (a {kind} inside an unquoted text field? quote that field)" if more else ""))
        yield line, dict(zip(header, fields, strict=True))
    if header is None:
        raise DataError(f"{path}: the file is empty (expected a header line with {', '.join(columns)})")


def _check_header(path: Path, header: list[str], columns: Sequence[str]) -> None:
    seen = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path}: column '{name}' appears twice in the header")
        seen.add(name)
    for column in columns:
        if column not in header:
            raise DataError(f"{path}: missing column '{column}'{close_match(column, header)}; "
                            f"the file has: {', '.join(header)}")


# --- one field of an entry ---------------------------------------------------------------------


def key(path: Path, place: int | str, entry: Any, name: str) -> Any:
    if not isinstance(entry, dict):
        raise DataError(f"{where(path, place)}: expected an object, got {type(entry).__name__}")
    if name not in entry:
        raise DataError(f"{where(path, place)}: missing key '{name}'{close_match(name, entry)}; "
                        f"the entry has: {', '.join(map(str, entry))}")
    return entry[name]


def text(path: Path, place: int | str, value: Any, field: str) -> str:
    """Non-empty text (a JSON number is taken as its digits; null, lists and objects are errors)."""
    if isinstance(value, (dict, list, bool)):
        raise DataError(f"{where(path, place)}: {field} must be text, got {json.dumps(value)[:60]}")
    out = "" if value is None else str(value).strip()
    if not out:
        raise DataError(f"{where(path, place)}: empty {field}")
    return out


def json_list(path: Path, data: Any, what: str = "a list of entries") -> list:
    if not isinstance(data, list):
        raise DataError(f"{path}: expected {what}, got {type(data).__name__}")
    return data


def video_number(path: Path, place: int | str, value: Any, prefixes: Sequence[str] = ("video",)) -> str:
    """A numeric video id as its digits: 7010, "7010" or "video7010" -> "7010".

    null, floats (7.0 is not a video number: it means the file went through a float column)
    and other text are errors, not ids such as "videoNone" or "video7.0".
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str):
        match = re.fullmatch(rf"(?:{'|'.join(map(re.escape, prefixes))})?(\d+)", value.strip())
        if match:
            return str(int(match.group(1)))
    raise DataError(f"{where(path, place)}: video_id {json.dumps(value)} is not a video number "
                    f"(an integer such as 7010)")
