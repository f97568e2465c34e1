import pytest
import torch
from torch import nn

from evilm.profiling.inputs import build_with_inputs
from evilm.profiling.paths import (
    BF16_TOLERANCE,
    FP32_TOLERANCE,
    TOLERANCES,
    Agreement,
    compare_outputs,
    prepare,
)


@pytest.fixture(scope="module")
def smoke():
    torch.manual_seed(0)
    return build_with_inputs("evilm", "smoke")


def test_compare_outputs_by_hand():
    ref = (torch.tensor([3.0, 4.0]), torch.zeros(2))
    out = (torch.tensor([3.0, 4.5]), torch.tensor([0.0, 0.0]))
    a = compare_outputs(out, ref)
    assert a.max_abs == pytest.approx(0.5)
    assert a.rel_rms == pytest.approx(0.5 / 5.0)
    assert a.within(BF16_TOLERANCE) is False  # max abs 0.5 > 0.1
    assert Agreement(max_abs=1e-6, rel_rms=1e-7).within(FP32_TOLERANCE)
    with pytest.raises(ValueError, match="shape"):
        compare_outputs((torch.zeros(3),), (torch.zeros(2),))


def test_every_path_has_a_tolerance_and_unknown_paths_fail(smoke):
    model, inputs = smoke
    assert set(TOLERANCES) == {"fp32_eager", "bf16_autocast", "compile_fp32", "compile_bf16", "onnxruntime"}
    with pytest.raises(ValueError, match="unknown inference path"):
        prepare("tensorrt", model, inputs)


@pytest.fixture(scope="module")
def onnx_smoke(smoke):
    model, inputs = smoke
    return prepare("onnxruntime", model, inputs, mask_input=2)


def test_bf16_and_onnxruntime_match_fp32_eager_on_the_smoke_model(smoke, onnx_smoke):
    model, inputs = smoke
    reference = prepare("fp32_eager", model, inputs).run(*inputs)
    assert len(reference) == 3 and all(r.dtype == torch.float32 for r in reference)  # cls, text, video
    bf16 = prepare("bf16_autocast", model, inputs).run(*inputs)
    a = compare_outputs(bf16, reference)
    assert a.within(TOLERANCES["bf16_autocast"]) and a.max_abs > 0  # bf16 really ran
    assert compare_outputs(onnx_smoke.run(*inputs), reference).within(TOLERANCES["onnxruntime"])
    assert onnx_smoke.setup_s > 0


def test_onnx_graph_keeps_the_text_padding_branch(smoke, onnx_smoke):
    # exported on full-length captions, the graph must still mask padded tokens in the decoder
    model, (frames, ids, mask) = smoke
    padded = mask.clone()
    padded[:, mask.shape[1] // 2 :] = 0
    eager = prepare("fp32_eager", model, (frames, ids, mask))
    reference = eager.run(frames, ids, padded)
    assert not compare_outputs(eager.run(frames, ids, mask), reference).within(
        FP32_TOLERANCE
    )  # padding matters
    assert compare_outputs(onnx_smoke.run(frames, ids, padded), reference).within(FP32_TOLERANCE)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 32)

    def forward(self, x):
        return nn.functional.gelu(self.fc(self.norm(x))) + 1


@pytest.mark.slow
def test_compiled_paths_match_eager_on_a_small_model():
    torch.manual_seed(0)
    block, x = Block().eval(), torch.randn(2, 5, 16)
    reference = prepare("fp32_eager", block, (x,)).run(x)
    for name in ("compile_fp32", "compile_bf16"):
        out = prepare(name, block, (x,)).run(x)
        assert compare_outputs(out, reference).within(TOLERANCES[name]), name
