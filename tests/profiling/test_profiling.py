import torch
import torch.nn.functional as F
from torch import nn

from evilm.models import create_model
from evilm.profiling import count_parameters, fvcore_flops, parameters_by_module, torch_flops
from evilm.profiling.cost_table import CostConfig, markdown, measure_model, ratios, run
from evilm.profiling.inputs import dummy_inputs


class TwoLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.b(self.a(x))


class Attn(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_parameter_counts_by_hand():
    m = TwoLinear()
    assert count_parameters(m) == 3 * 4 + 4 + 4 * 2
    m.a.weight.requires_grad_(False)
    assert count_parameters(m, trainable_only=True) == 4 + 8
    assert parameters_by_module(m) == {"a": 16, "b": 8}


def test_linear_flops_by_hand():
    x = torch.rand(5, 3)
    flops = fvcore_flops(TwoLinear(), (x,))
    assert flops == {"": 5 * (3 * 4 + 4 * 2), "a": 5 * 12, "b": 5 * 8}
    assert torch_flops(TwoLinear(), (x,)) == 5 * (3 * 4 + 4 * 2)


def test_attention_matmuls_are_counted():
    q, k, v = torch.rand(2, 3, 5, 4), torch.rand(2, 3, 7, 4), torch.rand(2, 3, 7, 6)
    expected = 2 * 3 * (5 * 7 * 4 + 5 * 7 * 6)
    assert fvcore_flops(Attn(), (q, k, v))[""] == expected
    assert torch_flops(Attn(), (q, k, v)) == expected


def test_paper_preset_counts_are_stable():
    model = create_model("paper")
    c = model.config
    inputs = dummy_inputs(c.num_frames, c.image_size, c.max_text_len, c.text.vocab_size)
    flops = fvcore_flops(model, inputs)
    # EdgeNeXt-small: 1.26 G per 256x256 frame in the one-MAC-one-FLOP convention.
    backbone = fvcore_flops(model, inputs, depth=2)["video_encoder.backbone"]
    assert abs(backbone / 4 / 1e9 - 1.26) < 0.005
    assert flops[""] == flops["video_encoder"] + flops["text_encoder"] + flops["decoder"]
    assert 7.4e9 < flops[""] < 7.6e9
    # 297 tokens through 4 blocks of width 384: linear MACs + attention MACs,
    # plus fvcore's 5 per element for each of the 9 layer norms.
    n, d = 1 + 40 + 4 * 64, 384
    expected_decoder = 4 * (n * (3 * d * d + d * d + 2 * 4 * d * d) + 2 * n * n * d) + 9 * 5 * n * d
    assert flops["decoder"] == expected_decoder


def test_cost_stage_writes_table(tmp_path):
    cfg = CostConfig(evilm_preset="smoke", baselines=[], torch_crosscheck=False)
    seen = []
    result = run(cfg, {}, tmp_path, on_metrics=lambda m, step: seen.append(m))
    text = (tmp_path / "cost_table.md").read_text()
    assert "| E-ViLM | 16 |" in text
    assert result.metrics["evilm.params_m"] == count_parameters(create_model("smoke")) / 1e6
    assert seen and seen[0]["evilm.gflops"] > 0
    assert not list(tmp_path.glob(".*.tmp*"))


def test_ratios_against_all_in_one_b():
    cfg = CostConfig(evilm_preset="smoke", baselines=[], torch_crosscheck=False)
    e = measure_model("evilm", cfg)
    fake_b = dict(e, model="all-in-one-B", params_no_heads=10 * e["params_no_heads"], gflops=20 * e["gflops"])
    r = ratios({"evilm": e, "all_in_one_b": fake_b})
    assert abs(r["params_fraction_of_aio_b"] - 0.1) < 1e-9
    assert abs(r["gflops_reduction_vs_aio_b"] - 0.95) < 1e-9
    assert abs(r["published_gflops_reduction"] - (1 - 12.2 / 235)) < 1e-9
    assert "95.0% fewer" in markdown({"evilm": e, "all_in_one_b": fake_b}, cfg)


def test_peak_memory_grows_with_activations():
    from evilm.profiling.memory import peak_memory_mib

    assert peak_memory_mib("evilm", "smoke") > 0


def test_cost_stage_latency_names_the_fastest_faithful_path(tmp_path, monkeypatch):
    import json

    import evilm.profiling.cost_table as cost_table

    # peak memory runs a fresh interpreter per model; test_peak_memory_grows_with_activations covers it
    monkeypatch.setattr(cost_table, "peak_memory_mib", lambda key, preset: 12.0)

    cfg = CostConfig(evilm_preset="smoke", baselines=[], torch_crosscheck=False, latency=True,
                     latency_paths=["fp32_eager", "bf16_autocast"], latency_repeats=3, latency_threads=1)
    m = run(cfg, {}, tmp_path).metrics
    by_path = {p: m[f"evilm.latency_ms.{p}"] for p in ("fp32_eager", "bf16_autocast")}
    assert m["evilm.latency_ms"] == min(by_path.values())  # both paths are within tolerance on smoke
    assert m["evilm.latency_speedup"] == by_path["fp32_eager"] / m["evilm.latency_ms"]
    assert m["evilm.peak_mib"] == 12.0
    row = json.loads((tmp_path / "cost_table.json").read_text())["evilm"]
    assert row["latency_ms_by_path"][row["latency_path"]] == m["evilm.latency_ms"]
    assert "1 threads" in (tmp_path / "cost_table.md").read_text()


def test_latency_ratio_uses_each_models_fastest_path():
    e = {"params_no_heads": 10, "gflops": 1.0, "median_ms": 50.0, "latency_ms_by_path": {"fp32_eager": 100.0}}
    b = {"params_no_heads": 100, "gflops": 20.0, "median_ms": 300.0, "latency_ms_by_path": {"fp32_eager": 400.0}}
    r = ratios({"evilm": e, "all_in_one_b": b})
    assert r["latency_ratio_aio_b_over_evilm"] == 6.0
    assert r["latency_ratio_aio_b_over_evilm_fp32_eager"] == 4.0
