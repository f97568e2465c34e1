import pytest

from experiments.specs import SpecError, load_spec, parse_sets, spec_files


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_valid_spec_loads(specs):
    spec = load_spec("faketable", specs)
    assert spec.name == "faketable" and [r.id for r in spec.rows] == ["none", "mvm", "other"]
    assert load_spec("fakesweep", specs).is_grid


def test_typo_in_key_names_file_path_allowed_and_close_match(specs):
    edit(specs / "faketable.yaml", "baseline: none", "baselin: none")
    with pytest.raises(SpecError) as err:
        load_spec("faketable", specs)
    text = str(err.value)
    assert "faketable.yaml" in text and "baselin" in text
    assert "did you mean 'baseline'" in text and "allowed:" in text and "columns" in text


def test_typo_in_nested_key(specs):
    edit(
        specs / "faketable.yaml",
        "{id: mc, label: MC, stage: mc, metric: accuracy",
        "{id: mc, label: MC, stage: mc, metirc: accuracy",
    )
    with pytest.raises(SpecError) as err:
        load_spec("faketable", specs)
    assert err.value.path == "columns[1].metirc"
    assert "did you mean 'metric'" in str(err.value)


def test_wrong_type(specs):
    edit(specs / "faketable.yaml", "seeds: [0, 1]", "seeds: [0, one]")
    with pytest.raises(SpecError) as err:
        load_spec("faketable", specs)
    assert err.value.path == "seeds[1]" and "'one'" in str(err.value)


def test_bad_literal_suggests(specs):
    edit(specs / "faketable.yaml", "profile: smoke", "profile: smok")
    with pytest.raises(SpecError) as err:
        load_spec("faketable", specs)
    assert err.value.path == "profile" and "did you mean 'smoke'" in str(err.value)


def test_cross_references(specs):
    edit(specs / "faketable.yaml", "baseline: none", "baseline: nnoe")
    with pytest.raises(SpecError) as err:
        load_spec("faketable", specs)
    assert "no row 'nnoe'" in str(err.value) and "did you mean 'none'" in str(err.value)

    edit(specs / "faketable.yaml", "baseline: nnoe", "baseline: none")
    edit(specs / "faketable.yaml", "paper: {qa: 30.0, mc: 40.0}", "paper: {qa: 30.0, mcc: 40.0}")
    with pytest.raises(SpecError) as err:
        load_spec("faketable", specs)
    assert "rows[0].paper.mcc" in str(err.value) and "did you mean 'mc'" in str(err.value)


def test_unknown_name_lists_known_ones(specs):
    with pytest.raises(SpecError) as err:
        load_spec("faketabel", specs)
    text = str(err.value)
    assert "did you mean 'faketable'" in text and "known: faketable, fakesweep" in text


def test_unknown_base_pipeline(specs):
    edit(specs / "faketable.yaml", "base: fake", "base: faek")
    with pytest.raises(SpecError) as err:
        load_spec("faketable", specs)
    assert "no pipeline 'faek'" in str(err.value) and "did you mean 'fake'" in str(err.value)


def test_sweep_validation(specs):
    edit(specs / "sweeps" / "fakesweep.yaml", "{grid: [0.1, 0.3, 0.5, 0.7]}", "{low: 0.1}")
    with pytest.raises(SpecError) as err:
        load_spec("fakesweep", specs)
    assert "low < high" in str(err.value) and "fakesweep.yaml" in str(err.value)


def test_bad_yaml(specs):
    (specs / "faketable.yaml").write_text("kind: table\nrows: [\n")
    with pytest.raises(SpecError) as err:
        load_spec("faketable", specs)
    assert "not valid YAML" in str(err.value)


def test_parse_sets():
    assert parse_sets(["a.b=0.5", "c=true", "d=[1, 2]", "e=text", "f=1e-6", "g=inf"]) == {
        "f": 1e-6,  # YAML 1.1 alone would read a string
        "g": "inf",
        "a.b": 0.5,
        "c": True,
        "d": [1, 2],
        "e": "text",
    }
    with pytest.raises(SpecError):
        parse_sets(["novalue"])


def test_shipped_specs_validate_and_plan():
    """Every spec in ablations/ loads and plans against the real stage configs, at every profile."""
    from experiments.plan import build_plan, table_variants
    from experiments.specs import DEFAULT_SPECS_DIR, SweepSpec
    from experiments.sweep import Sweep

    names = list(spec_files(DEFAULT_SPECS_DIR))
    assert {
        "table1",
        "table2",
        "table3",
        "table4",
        "table5",
        "table6",
        "figure1",
        "figure2",
        "mask_ratio",
    } <= set(names)
    plans = {}
    for name in names:
        spec = load_spec(name)
        for profile in ("smoke", "paper") if name == "table6" else ("smoke",):
            if isinstance(spec, SweepSpec):
                sweep = Sweep(spec, DEFAULT_SPECS_DIR, None, None, profile, [0], {}, storage="unused")
                first = {k: (p.grid or [p.low])[0] for k, p in spec.params.items()}
                assert sweep.plan("point", first).stages
            else:
                variants = table_variants(spec, DEFAULT_SPECS_DIR, profile, {})
                plans[name, profile] = build_plan(name, variants, profile, [0])
    # stages shared by tables run once: Table 3's E-ViLM^MVM is Table 6's focal row is Table 5's last row
    smoke = {name: plan for (name, profile), plan in plans.items() if profile == "smoke"}
    assert smoke["table3"].lookup["evilm_mvm", "hmdb51", 0] == smoke["table6"].lookup["focal", "hmdb51", 0]
    assert (
        smoke["table5"].lookup["vtm_mlm_mvm", "msrvtt_qa", 0]
        == smoke["table6"].lookup["focal", "msrvtt_qa", 0]
    )
    assert smoke["table3"].lookup["evilm", "hmdb51", 0] == smoke["table6"].lookup["baseline", "hmdb51", 0]
    # Figure 2's medium rows are the profile's own decoder: Table 5's stages
    assert smoke["figure2"].lookup["medium", "msrvtt_mc", 0] == smoke["table5"].lookup["vtm_mlm", "msrvtt_mc", 0]
    assert (
        smoke["figure2"].lookup["medium_mvm", "msrvtt_mc", 0]
        == smoke["table5"].lookup["vtm_mlm_mvm", "msrvtt_mc", 0]
    )
    # set_by_profile: Figure 2's sizes sit around each profile's own decoder (paper: width 384)
    fig2 = build_plan("figure2", table_variants(load_spec("figure2"), DEFAULT_SPECS_DIR, "paper", {}), "paper", [0])
    widths = {row: fig2.stages[fig2.lookup[row, "pretrain", 0]].params["model_overrides"].get("decoder", {}).get("width")
              for row in ("small", "medium", "large")}
    assert widths == {"small": 192, "medium": None, "large": 768}
    # the disk cache of decoded clips is how, not what: turning it off changes no stage identity
    off = {"tokenizer.data.frame_cache": None, "pretrain.frame_cache": None, "msrvtt_qa.train.frame_cache": None}
    no_cache = build_plan("table6", table_variants(load_spec("table6"), DEFAULT_SPECS_DIR, "smoke", off), "smoke", [0])
    assert no_cache.lookup == smoke["table6"].lookup
    # the paper profile reads a real data root instead of generating a world
    paper_data = next(s for s in plans["table6", "paper"].stages.values() if s.name == "data")
    assert paper_data.kind.name == "data_root"
