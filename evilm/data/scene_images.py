"""Labelled still frames of freshly drawn scenes: the image set of the ImageNet analogue.

ImageNet is a labelled image set apart from the video corpora. Its analogue here is a set of
frames of new scenes, drawn by the world's own scene generator and renderer (the same objects,
backgrounds, camera and lighting) under a seed key of its own, so that no clip of any benchmark
(pre-training or downstream, training or test) is among them. Each scene gives a few frames at
distinct random times of its clip. The frames are not passed through the video codec; a model
trained on them is measured on decoded clips (``evilm.priors.image``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from evilm.data.records import SceneInfo
from evilm.data.scenes import keyed_rng, render_scene, sample_scene
from evilm.data.synthetic import PRETRAIN_TWO_ACTIONS_PROB, object_count


def render_labelled_frames(world_seed: int, num_frames: int, image_size: int, num_scenes: int,
                           frames_per_scene: int, seed: int = 0, progress: bool = False,
                           ) -> tuple[torch.Tensor, list[SceneInfo]]:
    """``uint8 (num_scenes * frames_per_scene, 3, S, S)`` frames and each scene's ground truth.

    ``world_seed``, ``num_frames`` and ``image_size`` are the world's settings (its manifest);
    ``seed`` picks one image set among many. Frames of a scene are consecutive rows.
    """
    if not 1 <= frames_per_scene <= num_frames:
        raise ValueError(f"frames_per_scene must be in [1, {num_frames}] (the world's frames per clip), "
                         f"got {frames_per_scene}")
    rng = keyed_rng(world_seed, "image set", seed)
    images = torch.empty(num_scenes * frames_per_scene, 3, image_size, image_size, dtype=torch.uint8)
    scenes: list[SceneInfo] = []
    items: Any = range(num_scenes)
    if progress:
        from rich.progress import track

        items = track(items, description="image set: rendering scenes", transient=True)
    for i in items:
        # objects and actions drawn as for the pre-training clips
        scene = sample_scene(rng, f"image{i}", "images", num_frames, object_count(rng),
                             two_actions_prob=PRETRAIN_TWO_ACTIONS_PROB)
        chosen = np.sort(rng.choice(num_frames, size=frames_per_scene, replace=False))
        frames = render_scene(scene, num_frames, image_size, chosen)
        rows = slice(i * frames_per_scene, (i + 1) * frames_per_scene)
        images[rows] = torch.from_numpy(frames).permute(0, 3, 1, 2)
        scenes.append(scene.info())
    return images, scenes
