"""The image set of the ImageNet analogue: fresh scenes, the world's renderer, the same set every time."""

import numpy as np
import pytest

from evilm.data.scene_images import render_labelled_frames
from evilm.data.scenes import keyed_rng, render_scene, sample_scene
from evilm.data.synthetic import load_scenes, world_settings


def test_rendered_frames_are_the_renderers_frames_of_the_chosen_times():
    scene = sample_scene(keyed_rng(0, "t"), "v", "p", 8, 2)
    whole = render_scene(scene, 8, 32)
    assert np.array_equal(render_scene(scene, 8, 32, [1, 6]), whole[[1, 6]])


def test_image_set_is_deterministic_labelled_and_apart_from_the_world(smoke_world):
    settings = world_settings(smoke_world)
    args = (settings["seed"], settings["num_frames"], settings["image_size"], 12, 3)
    images, scenes = render_labelled_frames(*args)
    again, _ = render_labelled_frames(*args)
    other, _ = render_labelled_frames(*args, seed=1)
    assert images.shape == (36, 3, settings["image_size"], settings["image_size"])
    assert images.equal(again) and not images.equal(other)
    assert len(scenes) == 12 and all(1 <= len(s.objects) <= 3 for s in scenes)
    assert not {s.video_id for s in scenes} & set(load_scenes(smoke_world))  # no clip of any benchmark
    assert images.float().std() > 10  # drawn, not blank


def test_frames_per_scene_cannot_exceed_the_clip():
    with pytest.raises(ValueError, match="frames_per_scene"):
        render_labelled_frames(0, 4, 32, 2, 5)
