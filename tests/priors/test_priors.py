"""The prior stages learn what they are for, on a tiny budget, and save a backbone that loads."""

import torch

from evilm.data.catalog import load_benchmark
from evilm.data.synthetic import load_scenes
from evilm.models.video_encoder import create_backbone
from evilm.models.weights import load_backbone
from evilm.priors import clip, image
from evilm.priors.config import clip_prior_config, image_prior_config


def test_frame_labels_mark_every_object_and_count():
    from evilm.data.records import ObjectInfo, SceneInfo

    scene = SceneInfo("v", "p", [ObjectInfo("star", "red", "small", "plain", ["stay_still"]),
                                 ObjectInfo("ring", "blue", "large", "dotted", ["change_colour"],
                                            details={"new_colour": "white"})])
    presence, count = image.frame_labels(scene)
    names = [f"{a}:{v}" for a, values in image.ATTRIBUTES.items() for v in values]
    assert {n for n, p in zip(names, presence) if p} == {
        "shape:star", "shape:ring", "colour:red", "colour:blue", "colour:white", "texture:plain", "texture:dotted",
        "size:small", "size:large"}
    assert count == 1


def test_image_prior_learns_colours_and_its_weights_load(smoke_world, tmp_path):
    config = image_prior_config("smoke", {"backbone": "world_cnn_s32", "steps": 60, "batch_size": 16,
                                          "progress": False, "data": {"image_size": 32}})
    bench = load_benchmark("webvid", smoke_world)
    frames, presence, count = image.labelled_frames(bench.train, config, smoke_world, load_scenes(smoke_world), "")
    untrained = image.attribute_accuracy(image.FrameClassifier(config.backbone), frames, presence, count)
    model = image.train(config, frames, presence, count)
    trained = image.attribute_accuracy(model, frames, presence, count)
    assert trained["colour"] > untrained["colour"] + 10  # fits what it was shown
    assert sum(trained.values()) > sum(untrained.values()) + 20
    result = image.run(config, {"data": smoke_world}, tmp_path)
    backbone = create_backbone(config.backbone)
    load_backbone(backbone, result.artifacts["weights"], config.backbone)
    saved = torch.load(result.artifacts["weights"], weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in backbone.state_dict().items())
    assert "image_prior/val_mean" in result.metrics
    # the smoke preset trains on rendered scenes (an image set of its own), 2 frames each
    assert result.metrics["image_prior/train_frames"] == config.rendered_scenes * config.frames_per_scene


def test_clip_prior_matches_frames_to_captions(smoke_world, tmp_path):
    config = clip_prior_config("smoke", {"backbone": "world_cnn_s32", "steps": 60, "batch_size": 8, "progress": False,
                                         "data": {"image_size": 32}})
    bench = load_benchmark("webvid", smoke_world)
    from evilm.data.text import TextTokenizer
    from evilm.priors.frames import load_frames

    words = TextTokenizer.build([r.caption for r in bench.train], keep_fraction=1.0)
    frames, kept = load_frames(bench.train, config.data, smoke_world)
    targets = words.word_targets([r.caption for r in kept])
    torch.manual_seed(0)
    before = clip.frame_to_caption_recall(clip.FrameTextModel(config.backbone, targets.shape[1], 16, 0.07), frames,
                                          targets)
    model = clip.train(config, frames, targets)
    after = clip.frame_to_caption_recall(model, frames, targets)
    assert after >= before + 25  # retrieves its own training captions far above chance (1/28)
    result = clip.run(config, {"data": smoke_world}, tmp_path)
    load_backbone(create_backbone(config.backbone), result.artifacts["weights"], config.backbone)
