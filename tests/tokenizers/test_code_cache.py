import pytest
import torch

from evilm.tokenizers import CachedCodes, cache_codes, create_tokenizer


def test_cached_codes_equal_online_codes(smoke_config, make_batch, tmp_path):
    tok = create_tokenizer("perceptual_vq", smoke_config)
    batches = [make_batch(smoke_config, seed=s) for s in range(2)]
    batches.append(dict(batches[0]))  # the same videos again (several captions): kept once
    path = cache_codes(tok, batches, tmp_path / "codes.pt", progress=False)
    assert tok.training  # mode restored
    cached = CachedCodes(path)
    assert len(cached) == 6 and cached.codebook_size == tok.codebook_size and cached.stride == 32
    tok.eval()
    for batch in batches[:2]:
        assert torch.equal(cached.lookup(batch["video_id"]), tok.encode(batch["frames"]))
    with pytest.raises(KeyError, match="nope"):
        cached.lookup(["nope"])


def test_cache_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        CachedCodes(tmp_path / "none.pt")
    torch.save({"format": "x"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a code cache"):
        CachedCodes(tmp_path / "x.pt")
