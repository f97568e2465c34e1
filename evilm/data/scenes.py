"""The generated video world: scenes of simple objects doing simple actions, and their rendering.

A scene has 1-3 objects, each with a shape, a colour, a size and a texture, each
doing one action (or two in sequence, or one action repeated). The background
is where most of the pixel variance lives and none of the meaning: multi-octave
texture noise in a random palette, lighting that drifts, a camera that jitters,
and sensor grain. A tokenizer that reconstructs pixels spends its codes on the
background; one that reconstructs caption words has to find the objects. That is
the contrast Table 6 measures.

Everything is a pure function of a seed; coordinates are in frame units
(0..1), so a scene renders at any resolution.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from evilm.data.records import ObjectInfo, SceneInfo

SHAPES = ["circle", "square", "triangle", "diamond", "star", "ring", "cross", "hexagon"]
COLOURS = {
    "red": (0.90, 0.12, 0.10),
    "green": (0.10, 0.72, 0.20),
    "blue": (0.12, 0.30, 0.95),
    "yellow": (0.97, 0.88, 0.10),
    "purple": (0.58, 0.16, 0.80),
    "orange": (1.00, 0.52, 0.05),
    "cyan": (0.10, 0.85, 0.88),
    "white": (0.96, 0.96, 0.96),
}
SIZES = {"small": 0.085, "medium": 0.115, "large": 0.15}  # radius, in frame widths
TEXTURES = ["plain", "striped", "dotted", "checkered"]
ACTIONS = [
    "move_left", "move_right", "move_up", "move_down", "rotate", "grow", "shrink",
    "bounce", "blink", "change_colour", "stay_still", "enter", "leave",
]
# actions that read naturally as "does it N times" (TGIF Action)
REPEATABLE = ["move_left", "move_right", "move_up", "move_down", "rotate", "grow", "shrink",
              "bounce", "blink", "change_colour"]
# actions that leave the object where it started: "where is it?" has one answer
STATIC_ACTIONS = ["stay_still", "rotate", "grow", "shrink", "blink", "change_colour"]
SIDES = ["left", "right", "top", "bottom"]
ROTATIONS = ["clockwise", "counterclockwise"]
# finer action classes (Kinetics-style probe): direction of rotation, side of entry/exit
FINE_ACTIONS = (
    [a for a in ACTIONS if a not in ("rotate", "enter", "leave")]
    + [f"rotate_{r}" for r in ROTATIONS] + [f"enter_{s}" for s in SIDES] + [f"leave_{s}" for s in SIDES]
)

MOVE_DISTANCE = 0.30  # frame widths per move
BOUNCE_HEIGHT = 0.16
ROTATION = math.radians(150)  # per rotate
GROW, SHRINK = 1.6, 0.6  # scale factor over one grow / shrink
MAX_SCALE = 1.0 * GROW
AIRBORNE = 2 / 3  # of each hop's time


@dataclass
class ObjectSpec:
    info: ObjectInfo
    x: float  # start centre, frame units
    y: float
    angle: float = 0.0


@dataclass
class SceneSpec:
    video_id: str
    pool: str
    objects: list[ObjectSpec]
    main: int
    seed: int  # background, lighting, jitter and grain
    meta: dict = field(default_factory=dict)

    def info(self) -> SceneInfo:
        return SceneInfo(self.video_id, self.pool, [o.info for o in self.objects], self.main)

    @property
    def main_object(self) -> ObjectInfo:
        return self.objects[self.main].info


def fine_action(obj: ObjectInfo, step: int = 0) -> str:
    """The fine class of the object's ``step``-th action (rotation sense, entry/exit side)."""
    action = obj.actions[step]
    if action == "rotate":
        return f"rotate_{obj.details['rotation']}"
    if action in ("enter", "leave"):
        return f"{action}_{obj.details[action]}"
    return action


# --- motion ------------------------------------------------------------------------------------


@dataclass
class State:
    x: float
    y: float
    angle: float
    scale: float
    colour: str
    visible: bool


def _smooth(p: float) -> float:
    return p * p * (3 - 2 * p)


def _progress(p: float, n: int) -> float:
    """How far an action done ``n`` times in a row has got, 0..1: ``n`` eased steps that add up.

    Cumulative, so that any few frames sampled from the clip show the direction of the change: a
    saw-tooth (move, jump back, move again) sampled at 4 frames shows a still object when the frames
    fall at the same point of every cycle.
    """
    if p >= 1.0:
        return 1.0
    step = min(int(p * n), n - 1)
    return (step + _smooth(p * n - step)) / n


def _hop_height(p: float, hops: int) -> float:
    """Bounce height, 0..1: ``hops`` hops, each in the air for its first ``AIRBORNE`` and then on the
    ground, so that frames sampled at any spacing catch both the air and the ground."""
    phase = (p * hops) % 1.0 if p < 1.0 else 1.0
    return math.sin(math.pi * phase / AIRBORNE) if phase < AIRBORNE else 0.0


def _apply(action: str, obj: ObjectInfo, start: State, p: float) -> State:
    """The state after doing ``action`` for fraction ``p`` (0..1) of its time, from ``start``."""
    n = max(1, obj.repeats)
    s = State(**vars(start))
    if action in ("move_left", "move_right", "move_up", "move_down"):
        d = MOVE_DISTANCE * _progress(p, n)
        dx, dy = {"move_left": (-d, 0), "move_right": (d, 0), "move_up": (0, -d), "move_down": (0, d)}[action]
        s.x, s.y = start.x + dx, start.y + dy
    elif action == "rotate":
        sense = 1.0 if obj.details.get("rotation") == "clockwise" else -1.0
        s.angle = start.angle + sense * ROTATION * p * n
    elif action == "grow":
        s.scale = start.scale * (1 + (GROW - 1) * _progress(p, n))
    elif action == "shrink":
        s.scale = start.scale * (1 - (1 - SHRINK) * _progress(p, n))
    elif action == "bounce":
        s.y = start.y - BOUNCE_HEIGHT * _hop_height(p, n)
    elif action == "blink":
        phases = 2 * max(n, 2) + 1  # visible, hidden, visible, ...
        s.visible = min(int(p * phases), phases - 1) % 2 == 0
    elif action == "change_colour":
        phases = n + 1  # A, B, A, ...: n changes
        first, second = start.colour, obj.details["new_colour"]
        s.colour = (first, second)[min(int(p * phases), phases - 1) % 2]
    elif action in ("enter", "leave"):
        side = obj.details[action]
        off = _offscreen(start, side, SIZES[obj.size])
        t = _smooth(p)  # in and out gently
        a, b = (off, (start.x, start.y)) if action == "enter" else ((start.x, start.y), off)
        s.x, s.y = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
    return s


def _offscreen(state: State, side: str, radius: float) -> tuple[float, float]:
    margin = 1.1 * radius * state.scale + 0.02
    return {"left": (-margin, state.y), "right": (1 + margin, state.y),
            "top": (state.x, -margin), "bottom": (state.x, 1 + margin)}[side]


def object_state(spec: ObjectSpec, t: float) -> State:
    """Where the object is at time ``t`` in [0, 1]: its actions share the clip equally."""
    obj = spec.info
    state = State(spec.x, spec.y, spec.angle, 1.0, obj.colour, True)
    steps = len(obj.actions)
    for k, action in enumerate(obj.actions):
        lo, hi = k / steps, (k + 1) / steps
        if t < hi or k == steps - 1:
            return _apply(action, obj, state, min(1.0, max(0.0, (t - lo) / (hi - lo))))
        state = _apply(action, obj, state, 1.0)
    return state


def frame_times(num_frames: int) -> np.ndarray:
    return (np.arange(num_frames) + 0.5) / num_frames


def _fits(spec: ObjectSpec, num_frames: int) -> bool:
    """Every on-screen moment (all but entering/leaving) keeps the object inside the frame."""
    radius = SIZES[spec.info.size]
    steps = len(spec.info.actions)
    for t in frame_times(num_frames):
        step = min(int(t * steps), steps - 1)
        if spec.info.actions[step] in ("enter", "leave"):
            continue
        s = object_state(spec, float(t))
        r = radius * s.scale * 1.05
        if s.x - r < 0 or s.x + r > 1 or s.y - r < 0 or s.y + r > 1:
            return False
    return True


# --- sampling ----------------------------------------------------------------------------------


def keyed_rng(seed: int, *keys) -> np.random.Generator:
    """A generator keyed by (seed, keys): what one clip draws does not depend on the other clips."""
    parts = [seed] + [int(hashlib.md5(str(k).encode()).hexdigest()[:8], 16) for k in keys]
    return np.random.default_rng(parts)


def _pick(rng: np.random.Generator, items, exclude=()):
    choices = [i for i in items if i not in exclude]
    return choices[int(rng.integers(len(choices)))]


def sample_object(
    rng: np.random.Generator,
    actions: list[str],
    repeats: int = 1,
    exclude_shapes=(),
    exclude_colours=(),
) -> ObjectInfo:
    shape = _pick(rng, SHAPES, exclude_shapes)
    colour = _pick(rng, list(COLOURS), exclude_colours)
    size = _pick(rng, list(SIZES))
    texture = _pick(rng, TEXTURES)
    if "rotate" in actions and shape in ("circle", "ring") and texture == "plain":
        texture = _pick(rng, TEXTURES, ("plain",))  # a plain disc that spins looks still
    details = {}
    if "rotate" in actions:
        details["rotation"] = _pick(rng, ROTATIONS)
    if "enter" in actions:
        details["enter"] = _pick(rng, SIDES)
    if "leave" in actions:
        details["leave"] = _pick(rng, SIDES)
    if "change_colour" in actions:
        details["new_colour"] = _pick(rng, list(COLOURS), (colour, *exclude_colours))
    return ObjectInfo(shape, colour, size, texture, list(actions), repeats, details)


def sample_actions(rng: np.random.Generator, two_actions: bool, allowed=ACTIONS) -> list[str]:
    """One action, or two different ones in an order that makes sense (enter first, leave last)."""
    first = _pick(rng, allowed, ("leave",) if two_actions else ())
    if not two_actions:
        return [first]
    second = _pick(rng, allowed, (first, "enter"))
    return [first, second]


LOCATIONS = ["center", "left", "right", "top", "bottom"]


def location_word(x: float, y: float) -> str:
    """Where a point lies in the frame: the centre square, else the nearer side."""
    dx, dy = x - 0.5, y - 0.5
    if max(abs(dx), abs(dy)) < 0.14:
        return "center"
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


def place(rng: np.random.Generator, obj: ObjectInfo, num_frames: int, others: list[ObjectSpec],
          tries: int = 60, location: str | None = None) -> ObjectSpec | None:
    """A start position whose whole path stays in frame and starts away from ``others``
    (and, given ``location``, lies in that part of the frame)."""
    radius = SIZES[obj.size]
    for _ in range(tries if location is None else 4 * tries):
        spec = ObjectSpec(obj, float(rng.uniform(radius, 1 - radius)), float(rng.uniform(radius, 1 - radius)),
                          float(rng.uniform(0, 2 * math.pi)))
        if location is not None and location_word(spec.x, spec.y) != location:
            continue
        clear = all(math.hypot(spec.x - o.x, spec.y - o.y) > 0.9 * (radius + SIZES[o.info.size]) for o in others)
        if clear and _fits(spec, num_frames):
            return spec
    return None


def sample_scene(
    rng: np.random.Generator,
    video_id: str,
    pool: str,
    num_frames: int,
    num_objects: int = 1,
    main_actions: list[str] | None = None,
    repeats: int = 1,
    two_actions_prob: float = 0.0,
    allowed_actions=ACTIONS,
    location: str | None = None,
) -> SceneSpec:
    """A scene whose main object does ``main_actions`` (or random ones); others mostly stay still.

    Exactly ``num_objects`` objects (a scene whose others cannot be placed is drawn again), so that
    a count asked about is the count drawn; ``location``: where the main object starts, when its
    actions are all ``STATIC_ACTIONS`` (a moving object has no one place).
    """
    for _ in range(100):
        actions = main_actions or sample_actions(rng, bool(rng.random() < two_actions_prob), allowed_actions)
        main_obj = sample_object(rng, actions, repeats)
        static = all(a in STATIC_ACTIONS for a in actions)
        main_spec = place(rng, main_obj, num_frames, [], location=location if static else None)
        if main_spec is None:
            continue
        objects = [main_spec]
        for _ in range(num_objects - 1):
            other_actions = ["stay_still"] if rng.random() < 0.6 else [
                _pick(rng, ["rotate", "blink", "grow", "shrink", "bounce", "change_colour"])]
            # colours stay unique in the scene, also after any colour change
            taken = [c for o in objects for c in (o.info.colour, o.info.details.get("new_colour")) if c]
            other = sample_object(rng, other_actions, 1, [o.info.shape for o in objects], taken)
            spec = place(rng, other, num_frames, objects)
            if spec is None:
                break
            objects.append(spec)
        if len(objects) < num_objects:
            continue
        # draw the main object last (on top); keep it first in the ground truth order
        order = objects[1:] + objects[:1]
        return SceneSpec(video_id, pool, order, main=len(order) - 1, seed=int(rng.integers(2**31)))
    raise RuntimeError(f"could not place a scene for {video_id} with actions {main_actions}")


# --- rendering ---------------------------------------------------------------------------------


def _upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of a (g, g) grid to (size, size)."""
    g = grid.shape[0]
    pos = np.linspace(0, g - 1, size)
    i0 = np.clip(np.floor(pos).astype(int), 0, g - 2)
    w = (pos - i0)[:, None]
    rows = grid[i0] * (1 - w) + grid[i0 + 1] * w  # (size, g)
    return rows[:, i0] * (1 - w.T) + rows[:, i0 + 1] * w.T


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Texture noise in a random two-tone palette, sometimes with faint stripes: (size, size, 3)."""
    noise = np.zeros((size, size), dtype=np.float32)
    for cells, amp in ((3, 1.0), (6, 0.7), (12, 0.5), (24, 0.35), (48, 0.25)):
        noise += amp * _upsample(rng.random((cells + 1, cells + 1)).astype(np.float32), size)
    noise = (noise - noise.min()) / max(1e-6, float(noise.max() - noise.min()))
    hue = rng.random()
    dark = _hsv(hue, rng.uniform(0.2, 0.7), rng.uniform(0.12, 0.4))
    light = _hsv((hue + rng.uniform(-0.25, 0.25)) % 1.0, rng.uniform(0.1, 0.6), rng.uniform(0.45, 0.8))
    img = dark + (light - dark) * noise[..., None]
    if rng.random() < 0.5:  # faint stripes at a random angle
        theta, freq = rng.uniform(0, math.pi), rng.uniform(6, 20)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        stripes = np.sin(2 * math.pi * freq * (xx * math.cos(theta) + yy * math.sin(theta)))
        img = img * (1 + 0.12 * stripes[..., None])
    img += 0.035 * rng.standard_normal(img.shape, dtype=np.float32)  # fixed fine texture
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test in the object's own unit coordinates (radius 1)."""
    r = np.hypot(u, v)
    if shape == "circle":
        return r <= 1.0
    if shape == "ring":
        return (r <= 1.0) & (r >= 0.55)
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "cross":
        return ((np.abs(u) <= 0.32) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= 0.32) & (np.abs(u) <= 0.95))
    if shape == "triangle":
        inside = np.ones_like(u, dtype=bool)
        for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6):  # edge normals
            inside &= (u * math.cos(a) + v * math.sin(a)) <= 0.5
        return inside
    if shape == "hexagon":
        inside = np.ones_like(u, dtype=bool)
        for a in (0.0, math.pi / 3, 2 * math.pi / 3):
            inside &= np.abs(u * math.cos(a) + v * math.sin(a)) <= 0.87
        return inside
    if shape == "star":
        theta = np.arctan2(v, u) + math.pi / 2
        return r <= 0.55 + 0.45 * np.cos(5 * theta) ** 2 * (np.cos(5 * theta) > 0)
    raise ValueError(f"unknown shape {shape!r}")


def _texture_shade(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A brightness factor per pixel: the pattern lives on the object and turns with it."""
    if texture == "striped":
        return np.where(np.sin(u * math.pi * 2.5) > 0, 1.0, 0.5)
    if texture == "dotted":
        fu, fv = (u * 1.6) % 1.0 - 0.5, (v * 1.6) % 1.0 - 0.5
        return np.where(fu * fu + fv * fv < 0.07, 0.45, 1.0)
    if texture == "checkered":
        return np.where((np.floor(u * 1.6) + np.floor(v * 1.6)) % 2 == 0, 1.0, 0.55)
    return np.ones_like(u)


def _draw(frame: np.ndarray, obj: ObjectInfo, state: State, dx: float, dy: float) -> None:
    if not state.visible:
        return
    size = frame.shape[0]
    radius = SIZES[obj.size] * state.scale * size
    cx, cy = state.x * size - dx, state.y * size - dy
    x0, x1 = max(0, int(cx - radius) - 1), min(size, int(cx + radius) + 2)
    y0, y1 = max(0, int(cy - radius) - 1), min(size, int(cy + radius) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    px = (np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx) / radius
    py = (np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy) / radius
    cos, sin = math.cos(state.angle), math.sin(state.angle)
    u, v = cos * px + sin * py, -sin * px + cos * py
    mask = _shape_mask(obj.shape, u, v)
    if not mask.any():
        return
    colour = np.array(COLOURS[state.colour], dtype=np.float32)
    shade = _texture_shade(obj.texture, u, v)[..., None]
    patch = frame[y0:y1, x0:x1]
    patch[mask] = (colour * shade)[mask]


def render_scene(scene: SceneSpec, num_frames: int, size: int, frames: Sequence[int] | None = None) -> np.ndarray:
    """The clip as ``uint8 (T, size, size, 3)``; ``frames``: only these of its ``num_frames`` (the same
    pixels as in the whole clip: every random draw is made for all frames first)."""
    rng = np.random.default_rng(scene.seed)
    jitter = max(1, round(0.03 * size))
    background = make_background(rng, size + 2 * jitter)
    # camera: a bounded random walk; light: a slow drift in gain and tint
    steps = rng.integers(-1, 2, size=(num_frames, 2))
    offsets = np.clip(np.cumsum(steps, axis=0), -jitter, jitter)
    gain_amp, gain_phase, gain_freq = rng.uniform(0.05, 0.2), rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 1.0)
    tint = rng.uniform(-0.05, 0.05, size=3).astype(np.float32)
    # sensor grain: a different crop of one noise field per frame (cheaper than fresh noise)
    grain = rng.standard_normal((2 * size, 2 * size, 3), dtype=np.float32) * np.float32(0.012)
    grain_at = rng.integers(0, size, size=(num_frames, 2))
    chosen = list(range(num_frames)) if frames is None else list(frames)
    canvas = np.empty((len(chosen), size, size, 3), dtype=np.float32)
    times = frame_times(num_frames)[chosen]
    for k, (f, t) in enumerate(zip(chosen, times)):
        ox, oy = int(offsets[f, 0]), int(offsets[f, 1])
        canvas[k] = background[jitter + oy : jitter + oy + size, jitter + ox : jitter + ox + size]
        for spec in scene.objects:
            _draw(canvas[k], spec.info, object_state(spec, float(t)), ox, oy)
        canvas[k] += grain[grain_at[f, 0] : grain_at[f, 0] + size, grain_at[f, 1] : grain_at[f, 1] + size]
    gain = (255.0 * (1 + gain_amp * np.sin(2 * math.pi * gain_freq * times + gain_phase))).astype(np.float32)
    shift = (255.0 * np.sin(math.pi * times)[:, None] * tint[None, :] + 0.5).astype(np.float32)
    canvas *= gain[:, None, None, None]
    canvas += shift[:, None, None, :]
    frames = np.clip(canvas, 0, 255, out=canvas).astype(np.uint8)
    return frames
