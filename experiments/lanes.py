"""Worker processes that run stages: the runner's lanes.

Every stage runs in a worker process, with the number of torch threads its identity names, set
before the stage starts (the library never reads the environment; the runner sets torch's count).
A lane is one worker that runs one stage at a time and stays for the next, so torch and the model
libraries load once per lane; a stage whose kind is ``exclusive`` (it has its own process pool)
gets a fresh worker of its own, which leaves after it. Workers are spawned (fresh interpreters:
nothing of the main process's threads or locks is inherited).

The main process keeps MLflow to itself (SQLite sees one writer): a worker sends back ``Event``s
through one queue — per-step metrics, the result (metrics, artifact paths, the machine's facts), or
the error with its traceback. A worker whose main process dies exits within a second, so a killed
command leaves no stage running on.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evilm.stage import StageResult


@dataclass
class Job:
    """One stage to run: everything a worker needs, picklable."""

    stage_id: str
    label: str  # for messages: "pretrain seed 0"
    run: Any  # "module:function", or the function (importable by the worker)
    config: Any
    inputs: dict[str, Path]
    out_dir: Path
    threads: int


@dataclass
class Event:
    """What a worker reports: ``metrics`` (per step), ``done``, ``failed``, ``interrupted``; the main
    process adds ``died`` for a worker that exited in the middle of a stage."""

    kind: str
    stage_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    step: int = 0
    artifacts: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    traceback: str = ""


# --- the worker side --------------------------------------------------------------------------


def _serve(tasks, events, parent_pid: int) -> None:
    """A worker's life: run jobs until told to stop (None), interrupted, or orphaned."""
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    try:
        while True:
            job = tasks.get()
            if job is None:
                return
            _run_job(job, events)
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the terminal's group
        return


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def _run_job(job: Job, events) -> None:
    # for a torch that the stage imports itself; one already imported is set below
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(job.threads)
    try:
        from experiments.stages import load_target

        run = load_target(job.run)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(job.threads)

        def on_metrics(metrics: dict[str, float], step: int) -> None:
            events.put(Event("metrics", job.stage_id, {str(k): float(v) for k, v in metrics.items()}, int(step)))

        result = run(job.config, job.inputs, job.out_dir, on_metrics)
        metrics, artifacts = check_result(result, job.label)
        from experiments import machine

        facts = machine.facts(job.threads)
        events.put(Event("done", job.stage_id, metrics, artifacts={k: str(p) for k, p in artifacts.items()}, facts=facts))
    except KeyboardInterrupt:
        events.put(Event("interrupted", job.stage_id))
        raise
    except BaseException as err:  # the stage failed (SystemExit included): report it, keep serving
        events.put(Event("failed", job.stage_id, error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc()))


def check_result(result: Any, label: str) -> tuple[dict[str, float], dict[str, Path]]:
    """The stage's metrics as floats and artifacts as existing paths, or a ``TypeError``/
    ``FileNotFoundError`` saying how the stage broke its contract."""
    if not isinstance(result, StageResult):
        raise TypeError(f"stage '{label}' returned {type(result).__name__}, expected evilm.stage.StageResult")
    metrics = {}
    for key, value in result.metrics.items():
        try:
            metrics[str(key)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"stage '{label}': metric '{key}' is not a number: {value!r}") from None
    artifacts = {str(k): Path(v) for k, v in result.artifacts.items()}
    missing = [k for k, p in artifacts.items() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"stage '{label}': artifact(s) {', '.join(missing)} do not exist")
    return metrics, artifacts


# --- the main process's side ------------------------------------------------------------------


class _Lane:
    def __init__(self, ctx, events, name: str, solo: bool = False):
        self.tasks = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(self.tasks, events, os.getpid()), name=name)
        self.process.start()
        self.job: Job | None = None
        self.solo = solo  # one job, then it leaves

    def stop(self) -> None:
        try:
            self.tasks.put(None)
        except (OSError, ValueError):
            pass


class Lanes:
    """Up to ``size`` worker processes, started when a stage first needs one."""

    def __init__(self, size: int):
        self.size = max(1, int(size))
        self._ctx = mp.get_context("spawn")
        self._events = None
        self._lanes: list[_Lane] = []
        self._closed_at_exit = False

    def running(self) -> list[Job]:
        return [lane.job for lane in self._lanes if lane.job is not None]

    def can_start(self, alone: bool = False) -> bool:
        """Whether a job can start now: an ``alone`` job when nothing runs; another when a lane is free
        and no ``alone`` job runs."""
        busy = [lane for lane in self._lanes if lane.job is not None]
        if alone:
            return not busy
        return len(busy) < self.size and not any(lane.solo for lane in busy)

    def start(self, job: Job, alone: bool = False) -> None:
        if self._events is None:
            self._events = self._ctx.Queue()
        if not self._closed_at_exit:
            atexit.register(self.close)  # idle workers wait for work: tell them to leave
            self._closed_at_exit = True
        self._lanes = [x for x in self._lanes if x.job is not None or x.process.is_alive()]  # gone while idle
        lane = None
        if not alone:
            lane = next((x for x in self._lanes if x.job is None and not x.solo), None)
        if lane is None:
            lane = _Lane(self._ctx, self._events, f"evilm-lane-{len(self._lanes)}", solo=alone)
            self._lanes.append(lane)
        lane.job = job
        lane.tasks.put(job)

    def next_event(self, timeout: float) -> Event | None:
        """The next event of a running job, a ``died`` event for a worker gone mid-stage, or None."""
        if self._events is None:
            time.sleep(timeout)
            return None
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return self._dead_lane()
        if event.kind in ("done", "failed", "interrupted"):
            self._release(event.stage_id, leaving=event.kind == "interrupted")
        return event

    def _dead_lane(self) -> Event | None:
        for lane in self._lanes:
            if lane.job is not None and not lane.process.is_alive():
                job = lane.job
                self._release(job.stage_id, leaving=True)
                code = lane.process.exitcode
                how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                return Event("died", job.stage_id, error=f"the worker process running it died ({how})")
        return None

    def _release(self, stage_id: str, leaving: bool = False) -> None:
        for lane in list(self._lanes):
            if lane.job is not None and lane.job.stage_id == stage_id:
                lane.job = None
                if lane.solo or leaving:
                    lane.stop()
                    self._lanes.remove(lane)
                    lane.process.join(timeout=0 if leaving else 10)

    def close(self) -> None:
        """Ask every worker to leave once its stage is done, and wait for them."""
        for lane in self._lanes:
            lane.stop()
        for lane in self._lanes:
            lane.process.join(timeout=30)
            if lane.process.is_alive():
                lane.process.kill()
        self._lanes = []

    def kill(self, grace_s: float = 5.0) -> None:
        """Stop every worker now: an interrupt (the stage's own cleanup runs), then a kill."""
        for lane in self._lanes:
            if lane.process.is_alive() and lane.process.pid:
                try:
                    os.kill(lane.process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for lane in self._lanes:
            lane.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if lane.process.is_alive():
                lane.process.kill()
                lane.process.join(timeout=5)
        self._lanes = []


def default_jobs(threads: int = 1) -> int:
    """Lanes by default: the CPU cores this process may use, shared out at ``threads`` each; one on a
    machine with an NVIDIA GPU (the stages would share it: ``--jobs`` says otherwise)."""
    if any(Path("/dev").glob("nvidia[0-9]*")):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, threads))
