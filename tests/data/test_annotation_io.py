"""Reading annotation files: tables that never shift columns, encodings, ids."""

import pytest

from evilm.data import annotation_io as ann
from evilm.data.records import DataError


def test_table_rows_are_dicts_keyed_by_header_with_file_line_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('a,b,c\n1,"x, y",3\n\n4,"two\nlines",6\n7,8,9\n')
    rows = list(ann.read_table(path, ["a", "c"]))
    assert rows == [(2, {"a": "1", "b": "x, y", "c": "3"}), (4, {"a": "4", "b": "two\nlines", "c": "6"}),
                    (6, {"a": "7", "b": "8", "c": "9"})]


@pytest.mark.parametrize("line, count", [("1,2,3,4", "4 fields where the header has 3"),
                                         ("1,2", "2 fields where the header has 3")])
def test_a_row_with_the_wrong_number_of_fields_names_its_line(tmp_path, line, count):
    path = tmp_path / "t.csv"
    path.write_text(f"a,b,c\n1,2,3\n{line}\n5,6,7\n")
    with pytest.raises(DataError, match=rf"t\.csv, line 3: {count} \(a, b, c\)"):
        list(ann.read_table(path, ["a"]))


def test_broken_quotes_duplicate_and_missing_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,2\n3,"never closed\n4,5\n')
    with pytest.raises(DataError, match=r"t\.csv, line 3: a quote opened here is never closed"):
        list(ann.read_table(path, ["a"]))
    path.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match="column 'a' appears twice"):
        list(ann.read_table(path, ["a"]))
    path.write_text("a,bb\n1,2\n")
    with pytest.raises(DataError, match=r"missing column 'b' \(did you mean 'bb'\?\)"):
        list(ann.read_table(path, ["b"]))
    path.write_text("\n\n")
    with pytest.raises(DataError, match="the file is empty"):
        list(ann.read_table(path, ["a"]))


def test_text_is_utf8_without_bom_and_bad_bytes_name_file_line_and_a_fix(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xef\xbb\xbfvideo1\nvideo2\n")
    assert ann.read_lines(path) == [(1, "video1"), (2, "video2")]
    path.write_bytes(b"video1\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"list\.txt, line 2: not UTF-8 text \(byte 0xe9 at offset 10\); "
                                        r"convert it to UTF-8, e\.g\. `iconv"):
        ann.read_text(path)
    path.write_bytes("video1\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"list\.txt: the file is UTF-16 text"):
        ann.read_text(path)
    table = tmp_path / "t.csv"
    table.write_bytes(b"a,b\n1,2\n" + b"x,y\n" * 5000 + b"3,caf\xe9\n")  # past the first buffer of text
    with pytest.raises(DataError, match=r"t\.csv, line 5003: not UTF-8 text \(byte 0xe9"):
        list(ann.read_table(table, ["a"]))


@pytest.mark.parametrize("value, digits", [(7010, "7010"), ("7010", "7010"), ("video7010", "7010"),
                                           (" video0 ", "0")])
def test_video_numbers_accept_integers_and_their_text(tmp_path, value, digits):
    assert ann.video_number(tmp_path / "qa.json", "entry 0", value) == digits


@pytest.mark.parametrize("value", [None, 7.0, 7.5, True, -1, "video", "abc7", "7 8", [7]])
def test_video_numbers_reject_null_floats_and_other_text(tmp_path, value):
    with pytest.raises(DataError, match=r"qa\.json, entry 3: video_id .* is not a video number"):
        ann.video_number(tmp_path / "qa.json", "entry 3", value)


def test_a_text_field_is_not_a_list_or_null(tmp_path):
    with pytest.raises(DataError, match="caption must be text"):
        ann.text(tmp_path / "a.json", "entry 0", ["x"], "caption")
    with pytest.raises(DataError, match="entry 0: empty caption"):
        ann.text(tmp_path / "a.json", "entry 0", None, "caption")
    assert ann.text(tmp_path / "a.json", 1, 12, "id") == "12"
