"""Training logs written by rank 0: JSON lines, TensorBoard scalars and progress lines.

After a resume, records past the checkpoint's step are dropped (JSON lines truncated, TensorBoard
``purge_step``), so the logs read as one uninterrupted run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from sie.io import atomic_open
from sie.paths import METRICS_LOG_FILE
from sie.progress import format_duration


def truncate_json_lines(path: Path, last_step: int) -> None:
    """Keep only the records of ``path`` whose step is at most ``last_step``."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= last_step]
    with atomic_open(path) as stream:
        stream.write("".join(f"{line}\n" for line in kept))


class RunLog:
    """JSON lines + TensorBoard + progress on stderr; every method is a no-op on ranks other than 0."""

    def __init__(
        self, output_dir: Path, label: str, total_steps: int, start_step: int, enabled: bool
    ) -> None:
        self.enabled = enabled
        self.label = label
        self.total_steps = total_steps
        self.start_step = start_step
        self.started = time.perf_counter()
        self.writer = None
        self.json_path = output_dir / METRICS_LOG_FILE
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            output_dir.mkdir(parents=True, exist_ok=True)
            truncate_json_lines(self.json_path, start_step)
            self.writer = SummaryWriter(log_dir=str(output_dir / "tensorboard"), purge_step=start_step)

    def record(self, step: int, scalars: dict[str, float], text: dict[str, Any]) -> None:
        """Write one record: scalars go to TensorBoard and JSON; ``text`` only to JSON."""
        if not self.enabled:
            return
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        try:
            with open(self.json_path, "a") as stream:
                stream.write(json.dumps({"step": step, **text, **scalars}, sort_keys=True) + "\n")
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.json_path)) from error

    def progress(self, step: int, epoch: int, epochs: int, loss: float, images_per_second: float) -> None:
        """One progress line with an ETA from this session's speed."""
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        done = step - self.start_step
        remaining = (self.total_steps - step) * elapsed / done if done else float("nan")
        eta = format_duration(remaining) if done else "?"
        print(
            f"{self.label}: epoch {epoch + 1}/{epochs} step {step}/{self.total_steps} loss {loss:.4f} "
            f"({images_per_second:.0f} images/s, elapsed {format_duration(elapsed)}, ETA {eta})",
            file=sys.stderr,
            flush=True,
        )

    def message(self, text: str) -> None:
        """A plain line on stderr (rank 0 only)."""
        if self.enabled:
            print(f"{self.label}: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
