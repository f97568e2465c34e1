import json
import time

import numpy as np
import pytest

from evilm.data import synthetic
from evilm.data.records import DataError
from evilm.data.synthetic import (
    SCENE_LABELS,
    WorldConfig,
    generate_world,
    load_scenes,
    scene_labels,
    world_key,
)
from evilm.data.video import read_frames

TINY = dict(profile="smoke", scale=0.3, image_size=32, num_frames=4, progress=False, workers=1)


def _annotation_files(world):
    return sorted(p.relative_to(world) for p in world.rglob("*") if p.is_file() and p.suffix != ".mp4"
                  and p.name != "manifest.json")


def test_same_seed_same_annotations_and_pixels(tmp_path):
    a, _ = generate_world(WorldConfig(seed=7, **TINY), tmp_path / "a")
    b, _ = generate_world(WorldConfig(seed=7, **TINY), tmp_path / "b")
    files = _annotation_files(a)
    assert files == _annotation_files(b) and len(files) > 20
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    videos = sorted(p.relative_to(a) for p in a.rglob("*.mp4"))
    assert videos == sorted(p.relative_to(b) for p in b.rglob("*.mp4"))
    for rel in videos[:: max(1, len(videos) // 8)]:
        assert np.array_equal(read_frames(a / rel, 4, backend="pyav"), read_frames(b / rel, 4, backend="pyav"))
    c, _ = generate_world(WorldConfig(seed=8, **TINY), tmp_path / "c")
    assert (a / "webvid/results_2M_train.csv").read_bytes() != (c / "webvid/results_2M_train.csv").read_bytes()


def test_key_covers_content_settings_only():
    base = WorldConfig(profile="smoke")
    assert world_key(base) == world_key(WorldConfig(profile="smoke", workers=1, progress=False, cache_root="/x"))
    assert world_key(base) != world_key(WorldConfig(profile="smoke", seed=1))
    assert world_key(base) != world_key(WorldConfig(profile="smoke", image_size=32))
    assert world_key(base) != world_key(WorldConfig(profile="quick"))


def test_complete_world_is_reused_instantly(smoke_world):
    start = time.perf_counter()
    path, info = generate_world(WorldConfig(profile="smoke", seed=0, progress=False), smoke_world.parent)
    assert path == smoke_world and info["reused"] and time.perf_counter() - start < 1.0
    manifest = json.loads((smoke_world / "manifest.json").read_text())
    assert manifest["complete"] and manifest["clips"] == len(list(smoke_world.rglob("*.mp4")))


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    config = WorldConfig(seed=3, **TINY)

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "render_clips", explode)
    with pytest.raises(KeyboardInterrupt):
        generate_world(config, tmp_path)
    assert list(tmp_path.iterdir()) == []
    # a stale temporary directory of a dead process is cleaned; a foreign half directory is refused
    monkeypatch.undo()
    stale = tmp_path / f".tmp-smoke-{world_key(config)}-999999999"
    stale.mkdir()
    (stale / "half.mp4").write_bytes(b"x")
    synthetic.world_dir(config, tmp_path).mkdir()
    with pytest.raises(DataError, match="not a complete generated world"):
        generate_world(config, tmp_path)
    synthetic.world_dir(config, tmp_path).rmdir()
    path, info = generate_world(config, tmp_path)
    assert not info["reused"] and not stale.exists() and (path / "manifest.json").is_file()


def test_stage_run_returns_the_world(tmp_path):
    config = WorldConfig(seed=4, **TINY)
    seen = []
    result = synthetic.run(config, {}, tmp_path, on_metrics=lambda m, step: seen.append(m))
    assert result.artifacts["world"].is_dir() and result.metrics["reused"] == 0.0
    assert result.metrics["clips"] > 0 and result.metrics["clips_per_second"] > 0 and seen
    again = synthetic.run(config, {}, tmp_path)
    assert again.metrics["reused"] == 1.0 and again.artifacts["world"] == result.artifacts["world"]


def test_scenes_hold_ground_truth_for_every_clip(smoke_world):
    scenes = load_scenes(smoke_world)
    assert len(scenes) == len(list(smoke_world.rglob("*.mp4")))
    hmdb = [s for s in scenes.values() if s.pool == "hmdb51"]
    assert {s.main_object.actions[0] for s in hmdb} == set(SCENE_LABELS["action"])
    labels = scene_labels(next(iter(scenes.values())))
    assert set(labels) == set(SCENE_LABELS)
    assert all(0 <= labels[k] < len(SCENE_LABELS[k]) for k in labels)


def test_world_config_validates():
    from evilm.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="profile"):
        from_dict(WorldConfig, {"profile": "huge"})
    with pytest.raises(ConfigError, match="workerz"):
        from_dict(WorldConfig, {"workerz": 2})


def test_quick_splits_are_sized_for_power_and_for_learning():
    """The quick world's test splits can tell rows apart (>= 500 retrieval and MC test videos, >= 500
    probe test clips), and the retrieval and probe training splits are not so small that a supervised
    model only memorises them (world v5: 300 DiDeMo videos and 500 K400 clips kept both ceilings short
    of 20 points above their floors)."""
    sizes = synthetic.PROFILES["quick"]["sizes"]
    assert sizes.msrvtt_test >= 500 and sizes.didemo_test >= 500
    assert sizes.hmdb_test_per_class * len(synthetic.HMDB_CLASSES) >= 500
    assert sizes.k400_val_per_class * len(synthetic.K400_CLASSES) >= 500
    assert sizes.didemo_train >= 1000
    assert sizes.k400_train_per_class * len(synthetic.K400_CLASSES) >= 1000
