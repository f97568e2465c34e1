"""A pretraining process SIGKILLed mid-way resumes from its last checkpoint and ends with the same
weights as a run that was never interrupted."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from pretrain_worker import train

WORKER = Path(__file__).resolve().parent / "pretrain_worker.py"


def _run(out: Path, *extra: str) -> subprocess.Popen:
    log = open(out.with_suffix(".log"), "w")
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(out), *extra], stdout=log, stderr=subprocess.STDOUT
    )


def test_killed_pretraining_resumes_to_the_same_weights(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    victim = _run(killed, "--block-at", "2")  # 4 steps, 2 per epoch: killed in step 2, mid-epoch
    expected = train(straight)  # the uninterrupted run, here while the victim starts
    deadline = time.monotonic() + 120
    while not (killed / "blocked").exists():
        assert victim.poll() is None, killed.with_suffix(".log").read_text()
        assert time.monotonic() < deadline, "the run never reached step 2"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    ckpt = torch.load(killed / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["step"] == 1  # the checkpoint of the step before the kill
    assert not (killed / "final.pt").exists() and not (killed / "model.pt").exists()  # nothing half-done
    assert not list(killed.rglob("*.tmp*")), list(killed.rglob("*"))  # no stray partial files

    resumed = _run(killed)
    assert resumed.wait(timeout=120) == 0, killed.with_suffix(".log").read_text()
    got = torch.load(killed / "final.pt", weights_only=True)
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
