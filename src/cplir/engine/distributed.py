"""Process-group setup for ``torchrun`` (NCCL on GPU, Gloo on CPU); one process is the world-size-1 case.

Single-process runs take the same code path with ``world_size == 1``, so there is only one trainer.
A worker started by ``torchrun`` stops when its launcher is gone (:func:`exit_with_launcher`).
"""

import _thread
import os
import sys
import threading
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cplir.errors import CplirError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1); pick the device.

    ``device``: ``"auto"`` (CUDA when available, one GPU per local rank), ``"cpu"`` or ``"cuda"``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and local_rank >= torch.cuda.device_count():
        found = (f"PyTorch {torch.__version__} is built without CUDA" if torch.version.cuda is None else
                 f"{torch.cuda.device_count()} CUDA device(s) visible for local rank {local_rank}")
        raise CplirError(f"--device cuda needs a GPU, but {found}; use --device cpu (or auto)")
    if "TORCHELASTIC_RUN_ID" in os.environ:
        exit_with_launcher()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world_size, local_rank, dev)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``tensor`` over ranks (in place; a no-op for one process)."""
    if info.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


_watching = threading.Event()


def exit_with_launcher(interval: float = 1.0, grace: float = 10.0) -> None:
    """Stop this process when its parent (the ``torchrun`` launcher) is gone.

    ``kill -9`` of the launcher leaves its workers running, and an immediate resume would then train beside them
    in the same run folder. A daemon thread polls the parent pid; when the process is re-parented it interrupts
    the main thread (``finally`` blocks run: checkpoint temporaries go, the run lock is released) and exits
    after ``grace`` seconds if the main thread is stuck, e.g. in a collective with a worker that is gone.
    """
    if _watching.is_set():
        return
    _watching.set()
    parent = os.getppid()

    def watch() -> None:
        # Re-parented (to init) before the watch began: the launcher died while this process was starting.
        while os.getppid() == parent != 1:
            time.sleep(interval)
        print(f"cplir: the launcher (pid {parent}) is gone; stopping worker pid {os.getpid()}", file=sys.stderr,
              flush=True)
        _thread.interrupt_main()
        time.sleep(grace)
        os._exit(1)

    threading.Thread(target=watch, name="cplir-launcher-watch", daemon=True).start()
