import pytest
import torch

from evilm.tokenizers.probe import average_precision, code_histograms, probe_accuracy, semantic_probe


def test_histograms_by_hand():
    codes = torch.tensor([[[0, 0], [2, 1]], [[3, 3], [3, 3]]])
    assert torch.equal(code_histograms(codes, 4), torch.tensor([[2.0, 1, 1, 0], [0, 0, 0, 4]]))


def test_average_precision_by_hand():
    scores = torch.tensor([[0.9], [0.8], [0.7], [0.1]])
    targets = torch.tensor([[1], [0], [1], [0]])
    # hits at ranks 1 and 3: (1/1 + 2/3) / 2
    assert average_precision(scores, targets).item() == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(scores, torch.zeros(4, 1)).isnan().all()


def test_codes_that_carry_the_label_are_read_out_and_random_codes_are_not():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=g)
    noise = torch.randint(0, 500, (400, 2, 2, 2), generator=g)
    informative = noise.clone()
    informative[:, :, 0, 0] = 500 + labels[:, None]  # one region per frame names the label
    names = [str(int(x)) for x in labels]
    good = probe_accuracy(informative[:300], names[:300], informative[300:], names[300:], codebook_size=504)
    bad = probe_accuracy(noise[:300], names[:300], noise[300:], names[300:], codebook_size=504)
    assert good["accuracy"] == 1.0
    assert bad["accuracy"] < 0.5 and bad["chance"] < 0.5


def test_semantic_probe_reports_fields_and_words():
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 3, (120,), generator=g)
    codes = labels[:, None, None, None].expand(120, 2, 2, 2).clone()
    words = torch.nn.functional.one_hot(labels, 3).float()
    fields = {"colour": [str(int(x)) for x in labels]}
    out = semantic_probe(
        codes[:80], codes[80:], 3,
        {"colour": fields["colour"][:80]}, {"colour": fields["colour"][80:]}, words[:80], words[80:],
    )
    assert out["probe_colour_acc"] == 1.0 and out["probe_words_map"] == pytest.approx(1.0)
    assert out["probe_words_chance"] < 0.8
    with pytest.raises(KeyError, match="colour"):
        semantic_probe(codes[:80], codes[80:], 3, {"colour": fields["colour"][:80]}, {})
