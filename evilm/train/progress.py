"""A rich progress bar that shows the latest loss and throughput, or nothing when disabled."""

from __future__ import annotations


class ProgressBar:
    """A rich progress bar with the latest metrics and throughput, or nothing."""

    def __init__(self, enabled: bool, total: int, start: int, description: str = "pretrain"):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"), transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(description, total=total, completed=start, info="")

    def update(self, step: int, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            keys = ("train/loss", "train/clips_per_s")
            info = " ".join(f"{k.split('/')[1]}={metrics[k]:.3g}" for k in keys if k in metrics)
            self.bar.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
