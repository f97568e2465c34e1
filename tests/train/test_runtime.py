from evilm.train.runtime import EpochBatchSampler


def test_sampler_is_a_permutation_and_resumes_mid_epoch():
    full = list(EpochBatchSampler(10, 3, seed=5, epoch=1))
    assert len(full) == 3 and len({i for b in full for i in b}) == 9
    assert list(EpochBatchSampler(10, 3, seed=5, epoch=1, start=2)) == full[2:]
    assert list(EpochBatchSampler(10, 3, seed=5, epoch=2)) != full
