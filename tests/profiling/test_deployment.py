import pytest

from evilm.profiling.deployment import Comparison, DeploymentConfig, PathResult, compare_paths, markdown


def _result(model, path, ms, within=True, batch=1):
    return PathResult(
        model=model,
        batch_size=batch,
        path=path,
        times_ms=[ms, ms + 2, ms - 1],
        setup_s=0.0,
        max_abs=0.0,
        rel_rms=0.0,
        within_tolerance=within,
    )


def test_config_checks_paths():
    with pytest.raises(ValueError, match="unknown inference paths"):
        DeploymentConfig(paths=["fp32_eager", "gpu"])
    with pytest.raises(ValueError, match="fp32_eager"):
        DeploymentConfig(paths=["onnxruntime"])


def test_ratios_speedups_and_fastest_faithful_path_by_hand():
    c = Comparison(
        results=[
            _result("evilm", "fp32_eager", 100.0),
            _result("evilm", "bf16_autocast", 40.0, within=False),  # fastest, but outside its tolerance
            _result("evilm", "onnxruntime", 50.0),
            _result("all_in_one_b", "fp32_eager", 300.0),
            _result("all_in_one_b", "bf16_autocast", 120.0),
            _result("all_in_one_b", "onnxruntime", 250.0),
        ],
        threads=2,
    )
    assert c.speedup("evilm", 1, "onnxruntime") == 2.0
    assert c.fastest_faithful("evilm", 1).path == "onnxruntime"
    assert c.fastest_faithful("all_in_one_b", 1).path == "bf16_autocast"
    assert c.ratio("all_in_one_b", 1, "fp32_eager") == 3.0
    assert c.ratio("all_in_one_b", 1, "onnxruntime") == 5.0
    assert c.ratio("all_in_one_t", 1, "onnxruntime") is None
    text = markdown(c)
    assert "| fp32 eager | 3.00 |" in text and "| ONNX Runtime fp32 | 5.00 |" in text
    assert "| each model's fastest faithful path | 2.40 |" in text  # 120 / 50
    assert "| E-ViLM | bf16 autocast | 40.0 |" in text and "| NO |" in text
    assert (
        "fastest faithful path ONNX Runtime fp32 is 2.00× its fp32 eager latency (target >= 2×: met)" in text
    )


def test_smoke_model_through_eager_and_bf16_paths():
    cfg = DeploymentConfig(
        evilm_preset="smoke",
        models=["evilm"],
        paths=["fp32_eager", "bf16_autocast"],
        batch_sizes=[1, 2],
        repeats=3,
        threads=1,
    )
    seen = []
    c = compare_paths(cfg, progress=seen.append)
    assert c.threads == 1 and c.batch_sizes() == [1, 2] and c.paths() == ["fp32_eager", "bf16_autocast"]
    for b in (1, 2):
        eager = c.get("evilm", b, "fp32_eager")
        assert eager.max_abs == 0 and eager.within_tolerance and len(eager.times_ms) == 3
        bf16 = c.get("evilm", b, "bf16_autocast")
        assert 0 < bf16.max_abs and bf16.within_tolerance
        assert bf16.items_per_s == pytest.approx(1e3 * b / bf16.median_ms)
    assert any("preparing E-ViLM / bf16 autocast" in s for s in seen)
    assert set(c.load) == {1, 2} and all(v >= 0 for pair in c.load.values() for v in pair)
    text = markdown(c)
    assert "### Batch 2" in text and text.count("Load average while timing") == 2


def test_a_path_that_cannot_be_prepared_is_reported_not_fatal(monkeypatch):
    import evilm.profiling.deployment as deployment

    real_prepare = deployment.prepare

    def prepare(name, *args, **kwargs):
        if name == "onnxruntime":
            raise RuntimeError("Exporting the operator 'aten::foo' is not supported\nmore detail")
        return real_prepare(name, *args, **kwargs)

    monkeypatch.setattr(deployment, "prepare", prepare)
    cfg = DeploymentConfig(
        evilm_preset="smoke", models=["evilm"], paths=["fp32_eager", "onnxruntime"], batch_sizes=[1], repeats=3
    )
    c = compare_paths(cfg)
    failed = c.get("evilm", 1, "onnxruntime")
    assert failed.error == "RuntimeError: Exporting the operator 'aten::foo' is not supported"
    assert not failed.within_tolerance and failed.times_ms == []
    assert c.fastest_faithful("evilm", 1).path == "fp32_eager"
    assert "| E-ViLM | ONNX Runtime fp32 | failed: RuntimeError" in markdown(c)
