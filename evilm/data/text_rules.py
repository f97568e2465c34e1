"""Video-blind rules: how far a benchmark can be solved from its text alone.

Each rule is fitted on a benchmark's training records (when it needs fitting) and scored on its
test records, without looking at a single frame. They are the cheap floors of the calibration
report (a trained text-only model is the expensive one) and the tests that keep the generated
world honest: a template that starts to give its answer away shows up here first.

- QA: the majority answer; the best answer per question *template* (the question with every word
  that is also an answer removed: "what color is the ?"), i.e. the prior a model gets from knowing
  the question type; the best answer per whole question.
- Multiple choice: the option most like the other options (word overlap: the centre of a star of
  one-attribute edits), the longest option, and the option most often right in training.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evilm.data.records import MCItem, QAItem


@dataclass
class RuleScore:
    """A rule's accuracy (%) on the test records, and on how many."""

    name: str
    accuracy: float
    items: int


def _words(text: str) -> list[str]:
    return text.lower().replace("?", " ").replace(",", " ").replace(".", " ").split()


def question_template(question: str, answer_words: set[str]) -> str:
    """The question with every word that is also an answer removed: its template."""
    return " ".join(w for w in _words(question) if w not in answer_words)


def _best_per_key(train: Sequence[QAItem], key: Callable[[QAItem], str]) -> tuple[dict[str, str], str]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in train:
        counts[key(r)][r.answer] += 1
    overall = Counter(r.answer for r in train).most_common(1)[0][0]
    # ties broken by the answer text, so the rule is deterministic
    return {k: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for k, c in counts.items()}, overall


def qa_rules(train: Sequence[QAItem], test: Sequence[QAItem]) -> list[RuleScore]:
    """Majority answer, best answer per template, best answer per whole question; and the template
    prior's chance (1 / the number of answers its template takes, averaged over the test questions)."""
    answers = {w for r in train for w in _words(r.answer)}

    def template(r: QAItem) -> str:
        return question_template(r.question, answers)

    def whole(r: QAItem) -> str:
        return " ".join(_words(r.question))

    out = []
    majority = Counter(r.answer for r in train).most_common(1)[0][0]
    out.append(_score("majority answer", [majority] * len(test), test))
    for name, key in (("best answer per template", template), ("best answer per question", whole)):
        best, fallback = _best_per_key(train, key)
        out.append(_score(name, [best.get(key(r), fallback) for r in test], test))
    choices: dict[str, set[str]] = defaultdict(set)
    for r in train:
        choices[template(r)].add(r.answer)
    chance = [1.0 / max(1, len(choices.get(template(r), ()))) for r in test]
    out.append(RuleScore("uniform within template (chance)", 100.0 * sum(chance) / max(1, len(test)), len(test)))
    return out


def _score(name: str, predicted: Sequence[str], test: Sequence[QAItem]) -> RuleScore:
    right = sum(p == r.answer for p, r in zip(predicted, test))
    return RuleScore(name, 100.0 * right / max(1, len(test)), len(test))


def _expected_credit(scores: Sequence[float], answer: int) -> float:
    """1/k when the answer is among k options tied at the top (a random tie-break's expected credit)."""
    top = max(scores)
    tied = [i for i, s in enumerate(scores) if s == top]
    return 1.0 / len(tied) if answer in tied else 0.0


def mc_rules(train: Sequence[MCItem], test: Sequence[MCItem]) -> list[RuleScore]:
    """Centrality (word overlap with the other options), length, and the training answers' frequency;
    ties get a random tie-break's expected credit."""
    seen_right = Counter(r.options[r.answer] for r in train)
    rules: dict[str, Callable[[MCItem], list[float]]] = {
        "most central option": lambda r: [
            sum(len(set(_words(o)) & set(_words(p))) for p in r.options if p is not o) for o in r.options],
        "longest option": lambda r: [float(len(_words(o))) for o in r.options],
    }
    if train:
        rules["most often right in training"] = lambda r: [float(seen_right[o]) for o in r.options]
    out = []
    for name, scores in rules.items():
        credit = sum(_expected_credit(scores(r), r.answer) for r in test)
        out.append(RuleScore(name, 100.0 * credit / max(1, len(test)), len(test)))
    return out
