import ast
from pathlib import Path

import torch

import evilm.profiling
from evilm.models import create_model
from evilm.profiling.inputs import TupleOutput, dummy_inputs, inputs_for


def test_inputs_for_a_model_at_a_batch_size():
    model = create_model("smoke")
    frames, ids, mask = inputs_for(model, batch_size=3)
    c = model.config
    assert frames.shape == (3, c.num_frames, 3, c.image_size, c.image_size)
    assert ids.shape == mask.shape == (3, c.max_text_len) and bool(mask.all())
    assert int(ids.min()) >= 5 and int(ids.max()) < c.text.vocab_size  # no special tokens
    assert torch.equal(dummy_inputs(2, 8, 4, 50)[1], dummy_inputs(2, 8, 4, 50)[1])  # seeded


def test_tuple_output_flattens_fused_output():
    model = create_model("smoke").eval()
    with torch.no_grad():
        out = TupleOutput(model)(*inputs_for(model))
    assert isinstance(out, tuple) and len(out) == 3


def _profiling_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("evilm.profiling."):
            names.add(node.module.rsplit(".", 1)[1])
    return names


def test_profiling_modules_import_no_cycle():
    package = Path(evilm.profiling.__file__).parent
    graph = {
        p.stem: _profiling_imports(p) for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")
    }
    assert "cost_table" not in graph["memory"]  # the old cycle
    visiting, done = set(), set()

    def visit(module, trail):
        assert module not in visiting, f"import cycle: {' -> '.join([*trail, module])}"
        if module in done:
            return
        visiting.add(module)
        for dep in graph.get(module, ()):
            visit(dep, [*trail, module])
        visiting.discard(module)
        done.add(module)

    for module in graph:
        visit(module, [])
