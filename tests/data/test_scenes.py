import itertools

import numpy as np

from evilm.data.records import ObjectInfo
from evilm.data.scenes import (
    ACTIONS,
    REPEATABLE,
    SIZES,
    ObjectSpec,
    SceneSpec,
    fine_action,
    frame_times,
    object_state,
    render_scene,
    sample_scene,
)
from evilm.data.synthetic import TGIF_REPEATS
from evilm.data.video import sample_frame_indices


def _spec(actions, repeats=1, details=None, x=0.5, y=0.5):
    return ObjectSpec(ObjectInfo("square", "red", "small", "plain", actions, repeats, details or {}), x, y)


def test_actions_change_the_state_they_name():
    end = lambda spec: object_state(spec, 1.0)  # noqa: E731
    assert end(_spec(["move_left"])).x < 0.5 - 0.2
    assert end(_spec(["move_up"])).y < 0.5 - 0.2
    assert end(_spec(["grow"])).scale > 1.4 and end(_spec(["shrink"])).scale < 0.7
    assert end(_spec(["rotate"], details={"rotation": "clockwise"})).angle > 1.0
    assert end(_spec(["change_colour"], details={"new_colour": "blue"})).colour == "blue"
    still = end(_spec(["stay_still"]))
    assert (still.x, still.y, still.scale) == (0.5, 0.5, 1.0)
    # entering starts off screen, leaving ends off screen
    assert object_state(_spec(["enter"], details={"enter": "left"}), 0.0).x < 0
    assert end(_spec(["leave"], details={"leave": "bottom"})).y > 1
    blinks = [object_state(_spec(["blink"]), t).visible for t in frame_times(16)]
    assert blinks[0] and not all(blinks)


def test_two_actions_run_in_sequence():
    spec = _spec(["move_right", "grow"], x=0.3)
    half = object_state(spec, 0.5)
    assert abs(half.x - 0.6) < 1e-6 and half.scale == 1.0  # first action done, second not started
    end = object_state(spec, 1.0)
    assert abs(end.x - 0.6) < 1e-6 and end.scale > 1.4


def test_sampled_scenes_stay_in_frame_and_are_seeded():
    rng = np.random.default_rng(0)
    for i in range(60):
        scene = sample_scene(rng, f"v{i}", "test", 16, num_objects=1 + i % 3, two_actions_prob=0.5)
        shapes = [o.info.shape for o in scene.objects]
        colours = [o.info.colour for o in scene.objects]
        assert len(set(shapes)) == len(shapes) and len(set(colours)) == len(colours)
        for spec in scene.objects:
            r = SIZES[spec.info.size]
            for t in frame_times(16):
                s = object_state(spec, float(t))
                step = min(int(t * len(spec.info.actions)), len(spec.info.actions) - 1)
                if spec.info.actions[step] not in ("enter", "leave"):
                    assert r * s.scale <= s.x <= 1 - r * s.scale + 1e-6
    a = sample_scene(np.random.default_rng(5), "v", "test", 16, 2, two_actions_prob=0.5)
    b = sample_scene(np.random.default_rng(5), "v", "test", 16, 2, two_actions_prob=0.5)
    assert a == b


def test_render_is_deterministic_and_objects_are_visible():
    scene = SceneSpec("v", "test", [_spec(["stay_still"])], main=0, seed=3)
    a = render_scene(scene, 4, 64)
    assert a.shape == (4, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_scene(scene, 4, 64))
    empty = SceneSpec("v", "test", [_spec(["leave"], details={"leave": "left"})], main=0, seed=3)
    # at the centre, a red square differs strongly from the background in the red-vs-green contrast
    centre = a[:, 30:34, 30:34].astype(int)
    assert (centre[..., 0] - centre[..., 1]).mean() > 100
    late = render_scene(empty, 4, 64)[-1, 30:34, 30:34].astype(int)
    assert abs((late[..., 0] - late[..., 1]).mean()) < 100


def test_fine_action_labels():
    spec = _spec(["rotate"], details={"rotation": "counterclockwise"})
    assert fine_action(spec.info) == "rotate_counterclockwise"
    assert fine_action(_spec(["enter"], details={"enter": "top"}).info) == "enter_top"
    assert fine_action(_spec(["grow"]).info) == "grow"
    assert len(ACTIONS) == 13


def _seen(actions, repeats=1, num_frames=16, model_frames=4):
    """The main object's state at the frames an evaluation samples, relative to the first of them:
    what a model can know of the action (not where the object started, nor its size)."""
    spec = _spec(actions, repeats, {"rotation": "clockwise", "new_colour": "blue", "enter": "left",
                                    "leave": "right"})
    times = frame_times(num_frames)[sample_frame_indices(num_frames, model_frames, train=False)]
    states = [object_state(spec, float(t)) for t in times]
    first = states[0]
    return np.array([(s.x - first.x, s.y - first.y, s.angle - first.angle, s.scale / first.scale - 1,
                      float(s.colour != first.colour), float(s.visible != first.visible)) for s in states])


def test_every_tgif_action_shows_in_the_four_frames_a_model_sees():
    """TGIF Action asks which action an object repeats; Transition, what it does before or after another.
    Each must be told apart from the 4 evaluation frames: 4 cycles of a saw-tooth move or of a bounce
    once sampled as a still object."""
    repeated = {(a, n): _seen([a], n) for a in REPEATABLE for n in TGIF_REPEATS}
    in_sequence = {(a, k): _seen([a, "stay_still"] if k == 0 else ["stay_still", a]) for a in ACTIONS for k in (0, 1)
                   if (a, k) not in (("leave", 0), ("enter", 1))}
    for views in (repeated, in_sequence):
        for (action, n), seen in views.items():
            if action != "stay_still":
                assert np.abs(seen).max() > 0.03, f"{action} ({n}) looks still in the sampled frames"
        for (a, n), (b, m) in itertools.combinations(views, 2):
            if a != b and (views is repeated or n == m):
                gap = np.abs(views[a, n] - views[b, m]).max()
                assert gap > 0.03, f"{a} ({n}) and {b} ({m}) look alike in the sampled frames"
