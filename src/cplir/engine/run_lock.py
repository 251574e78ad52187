"""One trainer per run folder: ``run_dir/train.lock`` names its owner and is held with an exclusive ``flock``.

Two trainers in one folder would log every iteration twice into one file and overwrite each other's checkpoints.
The kernel releases a ``flock`` when its process ends, however it ends (``kill -9`` included), so a lock file left
behind is recognised as stale simply by acquiring it; the pid, host and start time written inside let a refusal
name the process that holds the folder, and a takeover name the one that is gone. POSIX only (``fcntl``).
"""

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import torch

from cplir.engine.distributed import DistInfo
from cplir.errors import RunInUseError
from cplir.outputs import prepare_output_dir

LOCK_NAME = "train.lock"


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


def describe_owner(owner: dict) -> str:
    """``pid 123 on host h since 2026-01-01 10:00:00`` from what a lock file holds."""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["started"])) if "started" in owner else "?"
    return f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')} since {since}"


class RunLock:
    """The lock of one run folder; :meth:`acquire` raises :class:`RunInUseError` when another process holds it.

    Args:
        run_dir: the run folder (created if needed).
        note: where the takeover of a stale lock is reported (stderr by default).
    """

    def __init__(self, run_dir: Union[str, os.PathLike], note: Callable[[str], None] = _note):
        self.path = Path(run_dir) / LOCK_NAME
        self.note = note
        self.fd: Optional[int] = None
        self.previous: dict = {}  # the owner of a stale lock this process took over

    def acquire(self) -> "RunLock":
        prepare_output_dir(self.path.parent, "run folder")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read(fd)
                os.close(fd)
                raise RunInUseError(f"run folder {self.path.parent} is in use by another trainer "
                                    f"({describe_owner(owner)}); wait for it to end or stop it, or train under "
                                    "another name (--set name=...)") from None
            try:  # the owner may have removed the file between our open and flock: lock the current file
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self.previous = _read(fd)
        if self.previous:
            self.note(f"took over the lock of run folder {self.path.parent} left by "
                      f"{describe_owner(self.previous)}, which ended without releasing it")
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": round(time.time(), 3),
                             "argv": sys.argv})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still locked, so no one takes over a file about to vanish
        os.close(self.fd)  # closing releases the flock
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def hold_run_folder(run_dir: Union[str, os.PathLike], dist: DistInfo = DistInfo()) -> Iterator[None]:
    """Hold the lock of ``run_dir`` on rank 0 for the body; every rank stops with the refusal when rank 0 cannot
    get it (so no worker is left waiting in the first collective of training)."""
    lock, error = RunLock(run_dir), None
    if dist.is_main:
        try:
            lock.acquire()
        except RunInUseError as err:
            error = err
    if dist.distributed:
        failed = torch.tensor([float(error is not None)], device=dist.device)
        torch.distributed.all_reduce(failed)
        if failed.item() and error is None:
            error = RunInUseError(f"rank 0 could not lock the run folder {run_dir} (another trainer uses it)")
    if error is not None:
        raise error
    try:
        yield
    finally:
        lock.release()
