"""Language for the generated world: captions, moment descriptions, questions and options.

Captions imitate WebVid's stock-footage titles (~10-20 words): varied templates
and word orders, synonyms drawn with Zipf-like weights (so a few words are very
frequent and many are rare, as in real captions), optional mentions of the
other objects, of the background and of nuisance (camera shake, flicker), which
say nothing the video's meaning depends on.

Questions use canonical words (the answer vocabulary is the canonical words),
and every answer depends on the video: the question never contains its answer,
and within one question template the answers are as balanced as the scenes are
(``evilm.data.synthetic`` balances the scenes). Multiple-choice distractors are
drawn from the answer's own distribution, so the options alone do not give the
answer away.
"""

from __future__ import annotations

import math

import numpy as np

from evilm.data.records import ObjectInfo, SceneInfo
from evilm.data.scenes import ACTIONS, REPEATABLE, STATIC_ACTIONS, location_word

# first entry = canonical word; later entries are rarer synonyms
SHAPE_WORDS = {
    "circle": ["circle", "disc", "round shape", "ball", "dot"],
    "square": ["square", "box", "block", "tile"],
    "triangle": ["triangle", "triangular shape", "wedge"],
    "diamond": ["diamond", "rhombus", "lozenge"],
    "star": ["star", "starburst", "five pointed star"],
    "ring": ["ring", "hoop", "donut", "loop"],
    "cross": ["cross", "plus sign", "plus shape"],
    "hexagon": ["hexagon", "hexagonal shape", "honeycomb cell"],
}
COLOUR_WORDS = {
    "red": ["red", "crimson", "scarlet"],
    "green": ["green", "emerald", "lime"],
    "blue": ["blue", "azure", "cobalt"],
    "yellow": ["yellow", "golden", "lemon"],
    "purple": ["purple", "violet", "lilac"],
    "orange": ["orange", "amber", "tangerine"],
    "cyan": ["cyan", "turquoise", "teal"],
    "white": ["white", "ivory", "snowy"],
}
SIZE_WORDS = {
    "small": ["small", "tiny", "little", "miniature"],
    "medium": ["medium sized", "mid sized", "modest"],
    "large": ["large", "big", "huge", "giant"],
}
TEXTURE_WORDS = {
    "plain": ["plain", "solid", "flat"],
    "striped": ["striped", "stripy", "banded"],
    "dotted": ["dotted", "spotted", "polka dot", "speckled"],
    "checkered": ["checkered", "chequered", "checked"],
}
SIDE_WORDS = {"left": ["left", "left side"], "right": ["right", "right side"],
              "top": ["top", "upper edge"], "bottom": ["bottom", "lower edge"]}
ROTATION_WORDS = {"clockwise": ["clockwise"], "counterclockwise": ["counterclockwise", "anticlockwise"]}

# third person present, for captions: "{subject} slides left"
ACTION_PHRASES = {
    "move_left": ["moves to the left", "slides left", "drifts leftward", "glides to the left",
                  "travels left across the frame", "shifts toward the left side"],
    "move_right": ["moves to the right", "slides right", "drifts rightward", "glides to the right",
                   "travels right across the frame", "shifts toward the right side"],
    "move_up": ["moves up", "rises", "floats upward", "climbs toward the top", "drifts up"],
    "move_down": ["moves down", "sinks", "drops down", "falls toward the bottom", "drifts downward"],
    "rotate": ["rotates", "spins", "turns around", "twirls", "revolves"],
    "grow": ["grows", "gets bigger", "expands", "swells", "grows larger", "inflates"],
    "shrink": ["shrinks", "gets smaller", "contracts", "dwindles", "shrinks down"],
    "bounce": ["bounces", "hops up and down", "bounces up and down", "jumps", "springs up"],
    "blink": ["blinks", "flickers", "flashes on and off", "blinks on and off", "appears and disappears"],
    "change_colour": ["changes colour to {new}", "turns {new}", "becomes {new}", "switches to {new}"],
    "stay_still": ["stays still", "rests in place", "sits motionless", "remains still", "does not move",
                   "stays put"],
    "enter": ["enters from the {side}", "comes in from the {side}", "appears from the {side}",
              "slides in from the {side}", "enters the frame from the {side}"],
    "leave": ["leaves to the {side}", "exits to the {side}", "moves out of the frame to the {side}",
              "disappears off the {side}"],
}
# gerunds, for "spinning red star on a grainy backdrop"
ACTION_GERUNDS = {
    "move_left": ["moving left", "sliding left", "drifting left"],
    "move_right": ["moving right", "sliding right", "drifting right"],
    "move_up": ["rising", "moving up", "floating up"],
    "move_down": ["sinking", "moving down", "falling"],
    "rotate": ["spinning", "rotating", "twirling"],
    "grow": ["growing", "expanding", "swelling"],
    "shrink": ["shrinking", "contracting", "dwindling"],
    "bounce": ["bouncing", "hopping", "jumping"],
    "blink": ["blinking", "flickering", "flashing"],
    "change_colour": ["colour changing", "colour shifting"],
    "stay_still": ["still", "motionless", "resting"],
    "enter": ["entering", "arriving"],
    "leave": ["leaving", "departing", "exiting"],
}
# bare infinitives, canonical: TGIF-style options ("What does the man do 3 times ?" -> "flap wings")
ACTION_BASE = {
    "move_left": "move to the left", "move_right": "move to the right", "move_up": "move up",
    "move_down": "move down", "rotate": "spin around", "grow": "grow bigger", "shrink": "shrink",
    "bounce": "bounce", "blink": "blink", "change_colour": "change colour", "stay_still": "stay still",
    "enter": "enter the frame", "leave": "leave the frame",
}
# one-word answers to "what is the X doing ?" (moves are asked as "which way ...")
ACTION_ANSWER = {
    "rotate": "spinning", "grow": "growing", "shrink": "shrinking", "bounce": "bouncing", "blink": "blinking",
    "change_colour": "changing", "stay_still": "resting", "enter": "entering", "leave": "leaving",
}
MOVE_ANSWER = {"move_left": "left", "move_right": "right", "move_up": "up", "move_down": "down"}
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six"]

PREFIXES = ["footage of", "animation of", "close up of", "video of", "stock footage of", "slow motion shot of",
            "simple animation of", "4k clip of", "abstract motion graphics with", "seamless loop of",
            "cartoon of", "computer generated clip of", "time lapse of", "minimalist render of"]
BACKGROUND_ADJS = ["grainy", "noisy", "textured", "mottled", "cloudy", "dim", "speckled", "blurry", "dark",
                   "murky", "hazy", "smoky", "pastel", "dusty", "gritty", "marbled", "smudged", "patchy"]
BACKGROUND_NOUNS = ["background", "backdrop", "surface", "canvas", "wall", "screen"]
NUISANCE = ["while the camera shakes slightly", "as the light flickers", "under shifting light",
            "with a shaky handheld camera", "as the lighting slowly changes", "in flickering light"]


def zipf_pick(rng: np.random.Generator, items: list[str], exponent: float = 1.3) -> str:
    """Pick with weights 1/(rank+1)^exponent: the first item most, the tail rarely."""
    weights = np.array([1.0 / (i + 1) ** exponent for i in range(len(items))])
    return items[int(rng.choice(len(items), p=weights / weights.sum()))]


# --- noun phrases and verb phrases -------------------------------------------------------------


def noun_phrase(obj: ObjectInfo, rng: np.random.Generator, det: bool = True, colour_prob: float = 0.95,
                full: bool = False) -> str:
    """'a small red striped star' with synonyms; size and texture are optional unless ``full``."""
    words = []
    if rng.random() < 0.45 or full:
        words.append(zipf_pick(rng, SIZE_WORDS[obj.size]))
    if rng.random() < colour_prob or full:
        words.append(zipf_pick(rng, COLOUR_WORDS[obj.colour]))
    if rng.random() < 0.45 or full:
        words.append(zipf_pick(rng, TEXTURE_WORDS[obj.texture]))
    words.append(zipf_pick(rng, SHAPE_WORDS[obj.shape]))
    phrase = " ".join(words)
    if not det:
        return phrase
    article = zipf_pick(rng, ["a", "one", "a single"], 2.0)
    if article == "a" and phrase[0] in "aeiou":
        article = "an"
    return f"{article} {phrase}"


def action_phrase(obj: ObjectInfo, step: int, rng: np.random.Generator) -> str:
    action = obj.actions[step]
    phrase = zipf_pick(rng, ACTION_PHRASES[action])
    if action == "change_colour":
        phrase = phrase.format(new=zipf_pick(rng, COLOUR_WORDS[obj.details["new_colour"]]))
    elif action in ("enter", "leave"):
        phrase = phrase.format(side=zipf_pick(rng, SIDE_WORDS[obj.details[action]]))
    elif action == "rotate" and rng.random() < 0.5:
        phrase += " " + zipf_pick(rng, ROTATION_WORDS[obj.details["rotation"]])
    return phrase


def verb_phrase(obj: ObjectInfo, rng: np.random.Generator) -> str:
    """What the object does: one action, one repeated, or two in sequence."""
    first = action_phrase(obj, 0, rng)
    if len(obj.actions) == 1:
        if obj.repeats > 1:
            count = NUMBER_WORDS[obj.repeats] if rng.random() < 0.7 else str(obj.repeats)
            return zipf_pick(rng, [f"{first} {count} times", f"{first} over and over", f"{first} repeatedly",
                                   f"{first} again and again"])
        return first
    second = action_phrase(obj, 1, rng)
    return zipf_pick(rng, [f"{first} and then {second}", f"{first}, then {second}", f"{first} before it {second}",
                           f"first {first} and afterwards {second}"])


def _others_clause(scene: SceneInfo, rng: np.random.Generator) -> str:
    others = [o for i, o in enumerate(scene.objects) if i != scene.main]
    if not others or rng.random() < 0.35:
        return ""
    if len(others) > 1 and rng.random() < 0.3:
        return zipf_pick(rng, [f"with {NUMBER_WORDS[len(others)]} other shapes around it",
                               f"among {NUMBER_WORDS[len(others)]} other objects"])
    other = others[int(rng.integers(len(others)))]
    np_other = noun_phrase(other, rng, colour_prob=0.8)
    if other.actions[0] != "stay_still" and rng.random() < 0.5:
        return f"while {np_other} {action_phrase(other, 0, rng)}"
    return zipf_pick(rng, [f"next to {np_other}", f"beside {np_other}", f"near {np_other}",
                           f"and {np_other} nearby"])


def _background(rng: np.random.Generator) -> str:
    adj = zipf_pick(rng, BACKGROUND_ADJS, 1.1)
    noun = zipf_pick(rng, BACKGROUND_NOUNS)
    return f"on a {adj} {noun}"


def caption(scene: SceneInfo, rng: np.random.Generator, min_words: int = 10, max_words: int = 20,
            full: bool = False) -> str:
    """A WebVid-style title for the clip, 10-20 words in most cases.

    ``full``: the main object is always named by size, colour, texture and shape (retrieval test
    sets, where each caption must single out its video).
    """
    obj = scene.main_object
    template = int(rng.choice(5, p=[0.3, 0.3, 0.2, 0.12, 0.08]))
    subject = noun_phrase(obj, rng, full=full)
    verb = verb_phrase(obj, rng)
    others = _others_clause(scene, rng)
    background = _background(rng)
    prefix = zipf_pick(rng, PREFIXES, 1.0)
    nuisance = zipf_pick(rng, NUISANCE) if rng.random() < 0.2 else ""
    simple = len(obj.actions) == 1 and obj.repeats == 1
    if template == 0:
        parts = [prefix, subject, "that", verb, others, background, nuisance]
    elif template == 1:
        parts = [subject, verb, others, background, nuisance]
    elif template == 2:
        parts = [background + ",", subject, verb, others, nuisance]
    elif template == 3 and simple:
        gerund = zipf_pick(rng, ACTION_GERUNDS[obj.actions[0]])
        parts = [gerund, noun_phrase(obj, rng, det=False, colour_prob=1.0, full=full), others, background, nuisance]
    else:
        parts = [prefix, subject, "that", verb, others, nuisance]
    text = " ".join(p for p in parts if p)
    # lengthen short titles with scene words, shorten long ones by dropping the other objects
    for extra in (background, nuisance or zipf_pick(rng, NUISANCE)):
        if len(text.split()) < min_words and extra not in text:
            text = f"{text} {extra}"
    if len(text.split()) > max_words and others:
        text = " ".join(text.replace(others, "").split())
    return text[0].upper() + text[1:]


def moment_descriptions(scene: SceneInfo, rng: np.random.Generator) -> list[str]:
    """DiDeMo-style descriptions, one per action of the main object, in order."""
    obj = scene.main_object
    colour, shape = obj.colour, zipf_pick(rng, SHAPE_WORDS[obj.shape])
    first = action_phrase(obj, 0, rng)
    out = [zipf_pick(rng, [f"the {colour} {shape} {first}", f"a {colour} {shape} {first} at the start",
                           f"{colour} {shape} {first}"])]
    if len(obj.actions) > 1:
        second = action_phrase(obj, 1, rng)
        out.append(zipf_pick(rng, [f"then the {shape} {second}", f"the {shape} {second} at the end",
                                   f"after that it {second}"]))
    elif obj.repeats > 1:
        out[0] += f" {NUMBER_WORDS[obj.repeats]} times"
    return out


# --- multiple choice ---------------------------------------------------------------------------


def choice_set(answer: str, distractor_pool: list[str], rng: np.random.Generator,
               num_options: int = 5) -> tuple[list[str], int]:
    """The answer among ``num_options`` options, the others drawn uniformly from ``distractor_pool``.

    The distractors come from the answer's own distribution (the same pool the answer was drawn
    from, e.g. other clips' captions), so no rule that reads only the options can single the answer
    out: chance is 1 / num_options.
    """
    pool = sorted(set(distractor_pool) - {answer})
    if len(pool) < num_options - 1:
        raise ValueError(f"{len(pool)} distinct distractors; {num_options - 1} needed")
    picked = [pool[i] for i in rng.choice(len(pool), size=num_options - 1, replace=False)]
    position = int(rng.integers(num_options))
    return picked[:position] + [answer] + picked[position:], position


# --- questions ---------------------------------------------------------------------------------


def ref(obj: ObjectInfo, colour: bool = True) -> str:
    return f"the {obj.colour} {obj.shape}" if colour else f"the {obj.shape}"


def open_questions(scene: SceneInfo, start_xy: tuple[float, float], rng: np.random.Generator) -> list[tuple[str, str]]:
    """MSRVTT-QA / MSVD-QA style (question, one-word answer) pairs about the main object.

    Each answer needs the video: the question names the object by attributes other
    than the one asked about.
    """
    obj = scene.main_object
    others = [o for i, o in enumerate(scene.objects) if i != scene.main]
    qa = []
    action = obj.actions[0]
    if action in MOVE_ANSWER:
        qa.append((f"which way does {ref(obj)} move?", MOVE_ANSWER[action]))
    else:
        qa.append((f"what is {ref(obj)} doing?", ACTION_ANSWER[action]))
    qa.append((f"what color is {ref(obj, colour=False)}?", obj.colour))
    unique_action = all(o.actions[0] != action for o in others)
    if unique_action and action in ACTION_ANSWER and action not in ("stay_still", "change_colour"):
        qa.append((f"what shape is {ACTION_ANSWER[action]}?", obj.shape))
    else:
        qa.append((f"what shape is the {obj.colour} object?", obj.shape))
    qa.append((zipf_pick(rng, ["how many objects are there?", "how many shapes are in the video?"]),
               NUMBER_WORDS[len(scene.objects)]))
    qa.append((f"what pattern does {ref(obj)} have?", obj.texture))
    qa.append((f"how big is {ref(obj)}?", obj.size))
    if action == "change_colour":
        qa.append((f"what color does {ref(obj, colour=False)} turn into?", obj.details["new_colour"]))
    if action in ("enter", "leave"):
        word = "come from" if action == "enter" else "go to"
        qa.append((f"which side does {ref(obj)} {word}?", obj.details[action]))
    if len(obj.actions) > 1 and obj.actions[1] in ACTION_ANSWER:
        qa.append((f"what is {ref(obj)} doing at the end?", ACTION_ANSWER[obj.actions[1]]))
    order = rng.permutation(len(qa))
    return [qa[i] for i in order]


def action_question(scene: SceneInfo, rng: np.random.Generator) -> tuple[str, list[str], int]:
    """TGIF Action: which action does the object repeat? (question, 5 options, answer index).

    The repeated action is uniform over ``REPEATABLE`` and the distractors are drawn from the same
    set, so the options alone say nothing about the answer.
    """
    obj = scene.main_object
    count = NUMBER_WORDS[obj.repeats] if obj.repeats < 5 else str(obj.repeats)
    question = f"What does {ref(obj)} do {count} times ?"
    options, answer = choice_set(ACTION_BASE[obj.actions[0]], [ACTION_BASE[a] for a in REPEATABLE], rng)
    return question, options, answer


def transition_questions(scene: SceneInfo, rng: np.random.Generator) -> list[tuple[str, list[str], int]]:
    """TGIF Transition: what happens before / after the other action?

    A first action is never "leave" and a second never "enter" (``sample_actions``); the
    distractors come from the same support as the answer, minus the action the question names and,
    where enough remain, minus what the clip's other objects do (a wrong option seen in the clip
    would ask which object did it, not what happened before or after).
    """
    obj = scene.main_object
    first, second = obj.actions
    elsewhere = {a for i, o in enumerate(scene.objects) if i != scene.main for a in o.actions}

    def options(answer: str, named: str, never: str) -> tuple[list[str], int]:
        allowed = [a for a in ACTIONS if a not in (named, never)]
        unseen = [a for a in allowed if a == answer or a not in elsewhere]
        return choice_set(ACTION_BASE[answer], [ACTION_BASE[a] for a in (unseen if len(unseen) >= 5 else allowed)], rng)

    return [(f"What does {ref(obj)} do before {ACTION_BASE[second]} ?", *options(first, second, "leave")),
            (f"What does {ref(obj)} do after {ACTION_BASE[first]} ?", *options(second, first, "enter"))]


FRAMEQA_TYPES = {"object": 0, "number": 1, "color": 2, "location": 3}


def frame_questions(scene: SceneInfo, start_xy: tuple[float, float], rng: np.random.Generator) -> list[
        tuple[str, str, int]]:
    """TGIF FrameQA: (question, answer word, type) with types object/number/color/location."""
    obj = scene.main_object
    others = [o for i, o in enumerate(scene.objects) if i != scene.main]
    action = obj.actions[0]
    out = [(f"what is the color of {ref(obj, colour=False)} ?", obj.colour, FRAMEQA_TYPES["color"]),
           ("how many objects are in the scene ?", NUMBER_WORDS[len(scene.objects)], FRAMEQA_TYPES["number"])]
    if action in ACTION_ANSWER and action != "stay_still" and all(o.actions[0] != action for o in others):
        out.append((f"what is {ACTION_ANSWER[action]} ?", obj.shape, FRAMEQA_TYPES["object"]))
    else:
        out.append((f"what is the {obj.colour} object ?", obj.shape, FRAMEQA_TYPES["object"]))
    if all(a in STATIC_ACTIONS for a in obj.actions):  # (a moving object has no one place)
        out.append((f"where is {ref(obj)} ?", location_word(*start_xy), FRAMEQA_TYPES["location"]))
    keep = rng.permutation(len(out))[: max(2, math.ceil(len(out) * 0.75))]
    return [out[i] for i in sorted(keep)]
