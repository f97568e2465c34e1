import pytest

from evilm.data import VideoText
from evilm.tasks import task_config
from evilm.tasks.multiple_choice import caption_choices
from evilm.tasks.multiple_choice import run as run_mc


def test_caption_choices_hold_the_caption_among_other_videos_captions():
    records = [VideoText(f"v{i // 2}", f"v{i // 2}.mp4", f"caption {i}") for i in range(12)]
    items = caption_choices(records, 5, seed=0)
    assert len(items) == 12
    for record, item in zip(records, items):
        assert len(item.options) == 5 and len(set(item.options)) == 5
        assert item.options[item.answer] == record.caption
        own = {r.caption for r in records if r.video_id == record.video_id}
        assert not (set(item.options) - {record.caption}) & own
    assert len({item.answer for item in items}) > 1
    with pytest.raises(ValueError, match="distinct"):
        caption_choices(records[:3], 5, seed=0)


def test_zero_shot_mc_scores_every_option_with_the_vtm_head(smoke_world, smoke_model_file, tmp_path):
    cfg = task_config("multiple_choice", "smoke", {"mode": "zero_shot", "train": {"progress": False}})
    result = run_mc(cfg, {"data": smoke_world, "pretrained": smoke_model_file}, tmp_path)
    m = result.metrics
    assert m["msrvtt_mc_zs/test_items"] == 6 and m["msrvtt_mc_zs/chance"] == 20.0
    import json

    items = json.loads(result.artifacts["per_item"].read_text())["items"]
    assert all(len(i["scores"]) == 5 for i in items)
    assert m["msrvtt_mc_zs/acc"] == pytest.approx(100 * sum(i["correct"] for i in items) / 6)
    # ties at the top get 1/k credit, and are counted
    assert all(i["correct"] in (0.0, 1.0 / i["tied"]) for i in items)
    assert all(i["correct"] == float(i["predicted"] == i["answer"]) for i in items if i["tied"] == 1)
    assert m["msrvtt_mc_zs/tied_items"] == sum(i["tied"] > 1 for i in items)
