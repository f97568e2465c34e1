from evilm.data.records import MCItem, QAItem
from evilm.data.text_rules import mc_rules, qa_rules, question_template


def _qa(question, answer):
    return QAItem("v", "v.mp4", question, answer)


def test_template_strips_answer_words():
    assert question_template("what color is the star?", {"red", "star"}) == "what color is the"


def test_qa_rules_see_a_leaking_template_and_the_template_prior():
    colours = ["red", "blue", "green", "white"]
    train = [_qa("what color is the ball?", c) for c in colours * 5] + [_qa("is it big?", "yes")] * 20
    test = [_qa("what color is the ball?", c) for c in colours] + [_qa("is it big?", "yes")] * 4
    scores = {r.name: r.accuracy for r in qa_rules(train, test)}
    # the yes/no template always answers "yes": half the test is free without the video
    assert scores["best answer per template"] >= 50.0
    # chance within template: 1/4 for the colour questions, 1/1 for the leaking one
    assert abs(scores["uniform within template (chance)"] - 100 * (4 * 0.25 + 4 * 1.0) / 8) < 1e-9


def _mc(options, answer):
    return MCItem("v", "v.mp4", options, answer)


def test_mc_rules_find_the_centre_of_one_attribute_edits_and_give_ties_fair_credit():
    # the truth at the centre: every distractor changes one word of it
    edits = [_mc(["a red star spins", "a blue star spins", "a red ring spins", "a red star sinks", "one red star spins"], 0)
             for _ in range(10)]
    assert {r.name: r.accuracy for r in mc_rules([], edits)}["most central option"] == 100.0
    # options of one length and no overlap: every rule ties five ways and gets 1/5
    tied = [_mc(["aa", "bb", "cc", "dd", "ee"], k % 5) for k in range(10)]
    scores = {r.name: r.accuracy for r in mc_rules([], tied)}
    assert abs(scores["most central option"] - 20.0) < 1e-9 and abs(scores["longest option"] - 20.0) < 1e-9
