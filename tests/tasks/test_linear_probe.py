import torch

from evilm.tasks import task_config
from evilm.tasks.config import LinearProbeConfig
from evilm.tasks.linear_probe import pool_video, train_probe
from evilm.tasks.linear_probe import run as run_probe
from evilm.train.config import OptimConfig


def test_probe_learns_separable_features_and_folds_the_standardisation():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    features = torch.randn(60, 8, generator=g) * 0.1 + 100.0  # large offset: standardisation matters
    features[torch.arange(60), labels] += 1.0
    probe = train_probe(features, labels, 3, LinearProbeConfig(probe_epochs=40, probe_optim=OptimConfig(lr=0.05, warmup_ratio=0.0)), seed=0)
    assert (probe(features).argmax(-1) == labels).float().mean() == 1.0


def test_the_frames_pool_keeps_time_order_that_the_mean_pool_loses():
    class Fused:  # fuse()'s output: 1 clip, 3 frames of 2 regions, width 4
        def __init__(self, video):
            self.video, self.cls = video, video[:, 0]

    clip = torch.randn(1, 3, 2, 4, generator=torch.Generator().manual_seed(0))
    forward, reverse = Fused(clip.flatten(1, 2)), Fused(clip.flip(1).flatten(1, 2))  # an action and its reversal
    assert pool_video(forward, "frames", 3).shape == (1, 12)
    assert torch.allclose(pool_video(forward, "frames", 3)[0, :4], clip[0, 0].mean(0))  # frame 0 first
    assert not torch.allclose(pool_video(forward, "frames", 3), pool_video(reverse, "frames", 3))
    assert torch.allclose(pool_video(forward, "mean", 3), pool_video(reverse, "mean", 3))


def test_linear_probe_stage_on_the_smoke_world(smoke_world, smoke_model_file, tmp_path):
    cfg = task_config("linear_probe", "smoke", {"probe_epochs": 5, "train": {"progress": False}})
    m = run_probe(cfg, {"data": smoke_world, "pretrained": smoke_model_file}, tmp_path).metrics
    assert m["hmdb51_probe/test_items"] == 13
    assert 0.0 <= m["hmdb51_probe/top1"] <= 100.0
