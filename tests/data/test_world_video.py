import numpy as np

from evilm.data.scenes import render_scene
from evilm.data.synthetic import WorldConfig, plan_world
from evilm.data.world_video import encode_mp4, rgb_to_yuv420p

TINY = dict(profile="smoke", scale=0.3, image_size=32, num_frames=4, progress=False, workers=1)


def test_encoding_gives_the_same_bytes_every_time(tmp_path):
    """FFmpeg's own RGB->YUV conversion gave different bytes for the same frames under load."""
    config = WorldConfig(seed=5, **TINY)
    clips = plan_world(config)[:12]
    for clip in clips:
        frames = render_scene(clip.scene, config.frames, config.size)
        encode_mp4(frames, tmp_path / "a.mp4", config.fps, config.crf)
        encode_mp4(frames.copy(), tmp_path / "b.mp4", config.fps, config.crf)
        assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes(), clip.video_id


def test_yuv_conversion_matches_the_decoder_round_trip():
    rng = np.random.default_rng(0)
    frame = np.repeat(np.repeat(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), 2, 0), 2, 1)  # 2x2 blocks
    yuv = rgb_to_yuv420p(frame)
    assert yuv.shape == (24, 16) and yuv.dtype == np.uint8
    import av

    back = av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_ndarray(format="rgb24")
    assert np.abs(back.astype(int) - frame.astype(int)).mean() < 3  # colours survive (4:2:0 on flat 2x2 blocks)
