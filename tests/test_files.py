import json

import pytest

from evilm.files import atomic_write, atomic_write_json, atomic_write_text


def test_atomic_write_text_and_json(tmp_path):
    atomic_write_text(tmp_path / "a" / "x.txt", "hello")
    assert (tmp_path / "a" / "x.txt").read_text() == "hello"
    atomic_write_json(tmp_path / "y.json", {"b": 1, "a": [1, 2]})
    assert json.loads((tmp_path / "y.json").read_text()) == {"a": [1, 2], "b": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "y.json"]  # no temporary file left


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
