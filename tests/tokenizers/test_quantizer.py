import pytest
import torch
import torch.nn.functional as F

from evilm.tokenizers.quantizer import QuantizerConfig, VectorQuantizer


def make_vq(**kw) -> VectorQuantizer:
    torch.manual_seed(0)
    return VectorQuantizer(QuantizerConfig(**{"codebook_size": 8, "code_dim": 4, **kw}))


def test_straight_through_gradient_is_that_of_the_identity():
    vq = make_vq()
    z = torch.randn(5, 4, requires_grad=True)
    weight = torch.randn(5, 4)
    out = vq(z)
    (out.z_q * weight).sum().backward()
    # Forward: the chosen (normalised) codes; backward: as if z_q were normalize(z).
    assert torch.allclose(out.z_q, vq.lookup(out.codes))
    z_ref = z.detach().clone().requires_grad_(True)
    (F.normalize(z_ref, dim=-1) * weight).sum().backward()
    assert torch.allclose(z.grad, z_ref.grad, atol=1e-6)
    assert vq.codebook.grad is None  # the task loss alone never moves codes


def test_codebook_and_commitment_terms_move_what_they_should():
    vq = make_vq(beta=0.25)
    z = torch.randn(6, 4, requires_grad=True)
    out = vq(z)
    zn = F.normalize(z.detach(), dim=-1)
    zq = vq.lookup(out.codes).detach()
    expected = (zn - zq).pow(2).sum(-1).mean()
    assert torch.allclose(out.codebook_loss, expected) and torch.allclose(out.commit_loss, expected)
    assert torch.allclose(out.loss, expected * 1.25)
    out.commit_loss.backward()
    assert vq.codebook.grad is None and z.grad is not None and z.grad.abs().sum() > 0
    z.grad = None
    vq(z).codebook_loss.backward()
    assert z.grad is None and vq.codebook.grad.abs().sum() > 0


def test_normalised_lookup_picks_the_nearest_code_by_direction():
    vq = make_vq(codebook_size=2, code_dim=2)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.06, 0.08], [2.0, 1.0]]))
    z = torch.tensor([[3.0, 4.0]])
    # Raw Euclidean distance would pick code 1; after l2 normalisation code 0 is exact.
    assert torch.cdist(z, vq.codebook.detach()).argmin().item() == 1
    assert vq.nearest(z).item() == 0 and vq(z).codes.item() == 0


def test_lookup_matches_brute_force_cosine():
    vq = make_vq(codebook_size=50, code_dim=8)
    z = torch.randn(3, 7, 8)
    cos = F.normalize(z, dim=-1) @ F.normalize(vq.codebook.detach(), dim=-1).t()
    assert torch.equal(vq.nearest(z), cos.argmax(-1))
    assert torch.equal(vq(z).codes, cos.argmax(-1))


def test_defaults_are_plain_gradient_codebook():
    vq = VectorQuantizer(QuantizerConfig())
    assert vq.codebook.shape == (9420, 32) and vq.codebook.requires_grad
    assert dict(vq.named_buffers()) == {}


def test_ema_moves_codes_towards_their_inputs_and_drops_the_codebook_term():
    vq = make_vq(ema=True, ema_decay=0.5)
    assert not vq.codebook.requires_grad
    z = torch.randn(32, 4)
    before = vq.normalized_codebook().clone()
    out = vq(z)
    assert out.codebook_loss.item() == 0.0
    code = out.codes[0].item()
    members = F.normalize(z, dim=-1)[out.codes == code]
    target = F.normalize(members.mean(0), dim=-1)
    after = vq.normalized_codebook()[code]
    assert (after - target).norm() < (before[code] - target).norm()
    vq.eval()
    frozen = vq.codebook.clone()
    vq(z)
    assert torch.equal(frozen, vq.codebook)  # no update outside training


def test_dead_codes_are_reseeded_onto_batch_vectors():
    vq = make_vq(codebook_size=16, reseed_dead=True, reseed_every=2)
    z = F.normalize(torch.tensor([1.0, 0.0, 0.0, 0.0]), dim=0).repeat(10, 1) + 0.01 * torch.randn(10, 4)
    used = set(vq(z).codes.tolist())
    dead_before = sorted(set(range(16)) - used)
    vq(z)  # second step triggers the check
    moved = vq.normalized_codebook()[dead_before]
    assert (moved @ F.normalize(z, dim=-1).t()).max(dim=1).values.min() > 0.999
    assert int(vq.hits_since_check.sum()) == 0


def test_wrong_code_dim_is_a_clear_error():
    with pytest.raises(ValueError, match="vectors of size 4"):
        make_vq()(torch.randn(2, 3))


def test_data_init_puts_every_code_where_the_first_batch_lies_and_happens_once():
    # Inputs in a narrow cone that random unit codes mostly miss: data init spreads the codes over it.
    torch.manual_seed(1)
    direction = F.normalize(torch.ones(4), dim=0)
    cone = F.normalize(direction + 0.2 * torch.randn(64, 4), dim=-1)
    random_vq, data_vq = make_vq(codebook_size=16), make_vq(codebook_size=16, init="data")
    with torch.no_grad():
        data_vq(cone)
    assert bool(data_vq.initialised)
    # every code is one of the inputs (64 inputs >= 16 codes): inside the cone
    assert (data_vq.normalized_codebook() @ direction).min() >= (cone @ direction).min() - 1e-6
    assert len(data_vq.nearest(cone).unique()) > len(random_vq.nearest(cone).unique())
    first = data_vq.codebook.detach().clone()
    data_vq(torch.randn(64, 4))  # later batches do not re-initialise
    assert torch.equal(first, data_vq.codebook.detach())


def test_data_init_with_fewer_inputs_than_codes_keeps_codes_distinct():
    vq = make_vq(codebook_size=16, init="data")
    vq(torch.randn(5, 4))
    codes = vq.normalized_codebook()
    assert len(torch.unique(codes, dim=0)) == 16


def test_data_init_waits_for_training_mode():
    vq = make_vq(init="data").eval()
    vq(torch.randn(8, 4))
    assert not bool(vq.initialised)
