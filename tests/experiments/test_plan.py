import pytest
from experiment_fakes import FAKE_KINDS

from experiments.plan import build_plan, table_variants
from experiments.specs import SpecError, load_spec


def plan_for(specs, profile="smoke", seeds=(0,), cli_set=None, name="faketable"):
    spec = load_spec(name, specs)
    return build_plan(
        spec.name, table_variants(spec, specs, profile, cli_set or {}), profile, list(seeds), FAKE_KINDS
    )


def ids_by_name(plan, row="mvm", seed=0):
    return {name: plan.lookup[(row, name, seed)] for (r, name, s) in plan.lookup if r == row and s == seed}


def test_identity_is_stable_and_shared_stages_run_once(specs):
    a, b = plan_for(specs), plan_for(specs)
    assert list(a.stages) == list(b.stages)
    # data is shared by both measured rows; tokenizer/pretrain only by "mvm"
    names = [s.name for s in a.stages.values()]
    assert names.count("data") == 1
    data = next(s for s in a.stages.values() if s.name == "data")
    assert {v for v, _ in data.uses} == {"none", "mvm"}
    # upstream first
    order = list(a.stages)
    for sid, stage in a.stages.items():
        assert all(order.index(u) < order.index(sid) for u in stage.inputs.values())


def test_changing_one_key_changes_exactly_the_downstream_stages(specs):
    before = ids_by_name(plan_for(specs))
    after = ids_by_name(plan_for(specs, cli_set={"tokenizer.codebook": 16}))
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"tokenizer", "pretrain", "qa", "mc"}

    after = ids_by_name(plan_for(specs, cli_set={"qa.quality": 0.9}))
    assert {n for n in before if before[n] != after[n]} == {"qa"}

    # an override equal to the default resolves to the same config, so the same identity
    assert ids_by_name(plan_for(specs, cli_set={"pretrain.lr": 0.1})) == before


def test_profile_and_seeds(specs):
    smoke, quick = plan_for(specs, "smoke"), plan_for(specs, "quick")
    data_smoke = next(s for s in smoke.stages.values() if s.name == "data")
    data_quick = next(s for s in quick.stages.values() if s.name == "data")
    assert data_smoke.params["n_items"] == 30 and data_quick.params["n_items"] == 60
    two = plan_for(specs, seeds=(0, 1))
    # unseeded data is shared across seeds; seeded stages are not
    assert ids_by_name(two, seed=0)["data"] == ids_by_name(two, seed=1)["data"]
    assert ids_by_name(two, seed=0)["pretrain"] != ids_by_name(two, seed=1)["pretrain"]
    assert next(s for s in two.stages.values() if s.name == "pretrain").config.seed in (0, 1)


def test_without_removes_stages_and_optional_inputs(specs):
    plan = plan_for(specs)
    qa_none = plan.stage_for("none", "qa", 0)
    qa_mvm = plan.stage_for("mvm", "qa", 0)
    assert set(qa_none.inputs) == {"data"}
    assert set(qa_mvm.inputs) == {"data", "checkpoint"}
    assert plan.stage_for("none", "pretrain", 0) is None
    assert plan.stage_for("other", "qa", 0) is None  # a paper-only row plans nothing


def test_downstream_of(specs):
    plan = plan_for(specs)
    tok = plan.lookup[("mvm", "tokenizer", 0)]
    names = {plan.stages[s].name for s in plan.downstream_of(tok)}
    assert names == {"pretrain", "qa", "mc"}


def test_stages_with_more_downstream_start_first(specs):
    plan = plan_for(specs)
    order = plan.critical_first()
    assert sorted(order) == sorted(plan.stages)
    counts = [len(plan.downstream_of(sid)) for sid in order]
    assert counts == sorted(counts, reverse=True)
    # the "none" row's qa comes before the "mvm" row's tokenizer in plan order, not in start order
    qa_none, tok = plan.lookup[("none", "qa", 0)], plan.lookup[("mvm", "tokenizer", 0)]
    assert order.index(tok) < order.index(qa_none)


def test_bad_override_names_the_layer_and_a_close_match(specs):
    with pytest.raises(SpecError) as err:
        plan_for(specs, cli_set={"pretrian.lr": 0.2})
    assert "--set" in str(err.value) and "did you mean 'pretrain'" in str(err.value)

    with pytest.raises(SpecError) as err:
        plan_for(specs, cli_set={"pretrain.lrr": 0.2})
    text = str(err.value)
    assert "--set['pretrain.lrr']" in text and "did you mean 'lr'" in text

    with pytest.raises(SpecError) as err:
        plan_for(specs, cli_set={"pretrain.steps": "many"})
    assert "steps" in str(err.value) and "integer" in str(err.value)


def test_required_input_removed_is_an_error(specs):
    path = specs / "faketable.yaml"
    path.write_text(path.read_text().replace("without: [pretrain, tokenizer]", "without: [data]"))
    with pytest.raises(SpecError) as err:
        plan_for(specs)
    assert "needs input 'data'" in str(err.value)


def test_kinds_needed_are_those_the_columns_read_and_their_upstream(specs):
    from experiments.plan import kinds_needed

    (specs / "tokonly.yaml").write_text(
        "kind: table\ntitle: Usage only\nbase: fake\ncolumns:\n"
        "  - {id: usage, label: Usage, stage: tokenizer, metric: usage}\nrows:\n  - {id: a, label: A}\n"
    )
    assert kinds_needed(load_spec("tokonly", specs), specs) == ["data", "tokenizer"]
    assert kinds_needed(load_spec("faketable", specs), specs) == ["data", "tokenizer", "pretrain", "downstream"]
    # a sweep needs every kind of its pipeline
    assert kinds_needed(load_spec("fakesweep", specs), specs) == ["data", "tokenizer", "pretrain", "downstream"]


def test_the_thread_count_is_part_of_the_identity_of_threaded_kinds_only(specs):
    import dataclasses

    spec = load_spec("faketable", specs)
    kinds = {**FAKE_KINDS, "data": dataclasses.replace(FAKE_KINDS["data"], threaded=False)}

    def ids(threads):
        plan = build_plan(spec.name, table_variants(spec, specs, "smoke", {}), "smoke", [0], kinds, threads)
        assert plan.threads == threads
        return ids_by_name(plan)

    one, two = ids(1), ids(2)
    assert one["data"] == two["data"]  # the world does not depend on torch's threads
    assert all(one[n] != two[n] for n in one if n != "data")
    assert ids(1) == one
    with pytest.raises(SpecError, match="threads"):
        ids(0)


def test_negative_seeds_are_refused(specs):
    with pytest.raises(SpecError, match="seeds must be integers >= 0"):
        plan_for(specs, seeds=(-1,))
    (specs / "bad.yaml").write_text((specs / "faketable.yaml").read_text().replace("seeds: [0, 1]", "seeds: [0, -1]"))
    with pytest.raises(SpecError, match="seeds"):
        load_spec("bad", specs)
