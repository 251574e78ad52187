"""Run logging: JSON lines always, TensorBoard when installed (the ``tensorboard`` extra), rank 0 only."""

import json
import math
import time
from pathlib import Path
from typing import Dict, Optional


class RunLogger:
    """Appends one JSON object per record to ``run_dir/metrics.jsonl``; mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the optional extra is not installed: JSON lines only
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def log(self, kind: str, iteration: int, values: Dict[str, float], **extra) -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "iteration": iteration, "time": round(time.time(), 3), **extra, **values}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, allow_nan=True) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"{kind}/{key}", value, iteration)
            self.writer.flush()

    def start_fresh(self) -> None:
        """A new run in this folder: an earlier run's log (one that never saved a checkpoint) is kept aside."""
        if self.enabled and self.path.is_file():
            self.path.rename(self.path.with_name(f"metrics.before-{int(time.time())}.jsonl"))

    def truncate_after(self, iteration: int) -> None:
        """Drop records logged after ``iteration``: a resumed run repeats them from its checkpoint."""
        if self.enabled and self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["iteration"] <= iteration]
            self.path.write_text("".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(run_dir: Path, kind: Optional[str] = None) -> list:
    """Records of ``run_dir/metrics.jsonl`` (optionally only one kind)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if kind is None or r["kind"] == kind]
