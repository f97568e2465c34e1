from pathlib import Path

import numpy as np
import pytest
import torch

from evilm.config import ConfigError, from_dict
from evilm.data.video import (
    FrameConfig,
    VideoReadError,
    load_clip,
    read_frames,
    sample_frame_indices,
    transform_clip,
)


def test_eval_indices_are_segment_middles():
    # 16 frames, 4 segments of 4: middles at 2, 6, 10, 14
    assert sample_frame_indices(16, 4, train=False).tolist() == [2, 6, 10, 14]
    assert sample_frame_indices(10, 1, train=False).tolist() == [5]


def test_train_indices_fall_one_per_segment_and_vary():
    rng = np.random.default_rng(0)
    draws = np.stack([sample_frame_indices(16, 4, train=True, rng=rng) for _ in range(200)])
    for k in range(4):  # segment k covers frames [4k, 4k + 4)
        assert draws[:, k].min() == 4 * k and draws[:, k].max() == 4 * k + 3
    assert len({tuple(d) for d in draws}) > 50


def test_indices_with_fewer_frames_than_segments_repeat_and_stay_in_range():
    idx = sample_frame_indices(3, 8, train=False)
    assert len(idx) == 8 and idx.min() >= 0 and idx.max() <= 2
    assert sorted(idx.tolist()) == idx.tolist()
    with pytest.raises(VideoReadError):
        sample_frame_indices(0, 4, train=False)


def _first_clip(world: Path) -> Path:
    return sorted((world / "msrvtt/videos/all").glob("*.mp4"))[0]


def test_decord_and_pyav_read_the_same_frames(smoke_world):
    path = _first_clip(smoke_world)
    a = read_frames(path, 4, backend="decord")
    b = read_frames(path, 4, backend="pyav")
    assert a.shape == (4, 64, 64, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # same decoder family, same frames


def test_load_clip_layout_and_resize(smoke_world):
    path = _first_clip(smoke_world)
    clip = load_clip(path, FrameConfig(num_frames=3, image_size=32), train=False)
    assert clip.shape == (3, 3, 32, 32) and clip.dtype == torch.float32
    assert 0.0 <= clip.min() and clip.max() <= 1.0
    again = load_clip(path, FrameConfig(num_frames=3, image_size=32), train=False)
    assert torch.equal(clip, again)  # evaluation is deterministic


def test_train_transform_is_seeded_and_keeps_range():
    frames = (np.random.default_rng(0).random((4, 48, 64, 3)) * 255).astype(np.uint8)
    cfg = FrameConfig(num_frames=4, image_size=32)
    a = transform_clip(frames, cfg, train=True, rng=np.random.default_rng(1))
    b = transform_clip(frames, cfg, train=True, rng=np.random.default_rng(1))
    c = transform_clip(frames, cfg, train=True, rng=np.random.default_rng(2))
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    # eval on a non-square frame: short side to 32, centre crop
    e = transform_clip(frames, cfg, train=False)
    assert e.shape == (4, 3, 32, 32)


def test_missing_and_corrupt_videos_raise_one_clear_error(tmp_path):
    with pytest.raises(VideoReadError, match="not found"):
        read_frames(tmp_path / "nope.mp4", 4)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty"):
        read_frames(tmp_path / "empty.mp4", 4)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(VideoReadError, match=r"bad\.mp4: cannot decode video \(decord: .*; pyav: "):
        read_frames(bad, 4)


def test_frame_config_validates():
    with pytest.raises(ConfigError, match="num_frames"):
        FrameConfig(num_frames=0)
    with pytest.raises(ConfigError, match="crop_scale"):
        FrameConfig(crop_scale=(0.5, 1.5))
    cfg = from_dict(FrameConfig, {"num_frames": 8, "crop_scale": [0.9, 1.0]})
    assert cfg.crop_scale == (0.9, 1.0)


def test_disk_cache_returns_the_decoded_clip_without_decoding_again(smoke_world, tmp_path, monkeypatch):
    import evilm.data.video as video

    path = _first_clip(smoke_world)
    plain = load_clip(path, FrameConfig(num_frames=3, image_size=32))
    cfg = FrameConfig(num_frames=3, image_size=32, cache_dir=str(tmp_path / "cache"))
    first = load_clip(path, cfg)  # a miss: decoded, then written
    stored = list((tmp_path / "cache").rglob("*.npy"))
    assert len(stored) == 1 and np.load(stored[0]).dtype == np.uint8
    assert torch.equal(first, plain)  # cached or not, the same clip (the eval grid is uint8 steps)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the clip is cached")

    monkeypatch.setattr(video, "read_frames", no_decoding)
    assert torch.equal(load_clip(path, cfg), plain)
    # other frame settings are another entry, and training clips never use the cache
    with pytest.raises(AssertionError, match="decoded although"):
        load_clip(path, FrameConfig(num_frames=2, image_size=32, cache_dir=cfg.cache_dir))
    with pytest.raises(AssertionError, match="decoded although"):
        load_clip(path, cfg, train=True, rng=np.random.default_rng(0))


def test_disk_cache_redecodes_a_damaged_entry_and_names_a_missing_video(smoke_world, tmp_path):
    path = _first_clip(smoke_world)
    cfg = FrameConfig(num_frames=2, image_size=32, cache_dir=str(tmp_path))
    clip = load_clip(path, cfg)
    [entry] = list(tmp_path.rglob("*.npy"))
    entry.write_bytes(b"half a file")
    assert torch.equal(load_clip(path, cfg), clip)
    assert np.load(entry).shape == (2, 3, 32, 32)  # rewritten whole
    with pytest.raises(VideoReadError, match=r"nope\.mp4: video file not found"):
        load_clip(tmp_path / "nope.mp4", cfg)


# --- files cut short, GIFs, decoder chatter ------------------------------------------------------


def _write_mp4(path: Path, num_frames: int = 40, index_first: bool = True) -> list[tuple[int, int]]:
    """An H.264 mp4 whose frame i is flat grey 6i, its index at the front (as streaming copies have it)
    or at the end; returns each packet's (byte offset, size)."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"} if index_first else {}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "5", "bf": "0"}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 6 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        return [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]


def test_a_file_cut_at_a_packet_boundary_reads_the_same_frames_with_both_backends(tmp_path):
    full = tmp_path / "full.mp4"
    packets = _write_mp4(full)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: packets[20][0]])  # frames 0-19 are whole, 20-39 gone
    a = read_frames(cut, 4, backend="decord")
    b = read_frames(cut, 4, backend="pyav")
    assert np.array_equal(a, b)
    grey = b.astype(float).mean(axis=(1, 2, 3))
    assert np.all(np.diff(grey) > 20)  # four different frames spread over the 20 that exist, none repeated
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert np.array_equal(read_frames(cut, 4, train=True, rng=rng_a, backend="decord"),
                          read_frames(cut, 4, train=True, rng=rng_b, backend="pyav"))


def test_a_file_cut_inside_a_packet_is_unreadable_for_both_backends(tmp_path):
    full = tmp_path / "full.mp4"
    packets = _write_mp4(full)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: packets[20][0] + packets[20][1] // 2])
    for backend in ("decord", "pyav"):
        with pytest.raises(VideoReadError, match=r"cut\.mp4: cannot decode video"):
            read_frames(cut, 4, backend=backend)
    with pytest.raises(VideoReadError, match="pyav: frame 20 is cut short"):
        read_frames(cut, 4, backend="pyav")


def test_pyav_samples_again_when_fewer_pictures_decode_than_packets(tmp_path, monkeypatch):
    import evilm.data.video as video

    full = tmp_path / "full.mp4"
    _write_mp4(full)
    expected = read_frames(full, 4, backend="pyav")
    expected_train = read_frames(full, 4, train=True, rng=np.random.default_rng(5), backend="pyav")
    real = video._pyav_packets

    def twenty_packets_show_nothing(container):  # as if 20 more packets held no picture
        packets, count = real(container)
        return packets, count + 20

    monkeypatch.setattr(video, "_pyav_packets", twenty_packets_show_nothing)
    assert np.array_equal(read_frames(full, 4, backend="pyav"), expected)
    assert np.array_equal(read_frames(full, 4, train=True, rng=np.random.default_rng(5), backend="pyav"),
                          expected_train)


def test_decord_messages_go_into_the_error_not_to_stderr(tmp_path, capfd):
    full = tmp_path / "full.mp4"
    _write_mp4(full, index_first=False)
    no_index = tmp_path / "no_index.mp4"
    no_index.write_bytes(full.read_bytes()[:-100])  # the index at the end is cut off
    capfd.readouterr()
    with pytest.raises(VideoReadError, match=r"no_index\.mp4: cannot decode video \(decord: .*ERROR opening"):
        read_frames(no_index, 4, backend="decord")
    assert capfd.readouterr().err == ""


def test_native_stderr_capture_keeps_decoder_lines_and_passes_others_on(capfd):
    import os

    from evilm.data.video import _native_stderr_captured

    capfd.readouterr()
    with _native_stderr_captured() as lines:
        os.write(2, b"[23:27:40] /src/video/video_reader.cc:83: ERROR opening: x.mp4\n")
        os.write(2, b"a warning from elsewhere\n")
        os.write(2, b"[h264 @ 0x55aebbc4b880] Invalid NAL unit size (607 > 96).\n")
    assert lines == ["[23:27:40] /src/video/video_reader.cc:83: ERROR opening: x.mp4",
                     "[h264 @ 0x55aebbc4b880] Invalid NAL unit size (607 > 96)."]
    assert capfd.readouterr().err == "a warning from elsewhere\n"
    with _native_stderr_captured() as again:  # the capture file is reused, emptied
        pass
    assert again == []


def test_gifs_go_to_pyav_without_trying_decord(tmp_path, monkeypatch):
    import av

    import evilm.data.video as video

    gif = tmp_path / "tumblr_x.gif"
    with av.open(str(gif), "w") as container:
        stream = container.add_stream("gif", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "rgb8"
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

    asked = []

    def decord_cannot_open_gifs(path, *args):
        asked.append(path)
        raise RuntimeError("Failed to measure duration/frame-count due to broken metadata.")

    monkeypatch.setattr(video, "_read_decord", decord_cannot_open_gifs)
    frames = read_frames(gif, 4)
    assert frames.shape == (4, 32, 32, 3) and len({int(f.mean()) for f in frames}) == 4
    assert asked == []  # opened once, by PyAV
    with pytest.raises(VideoReadError, match="Failed to measure"):
        read_frames(gif, 4, backend="decord")  # asked for by name, decord still gets it
