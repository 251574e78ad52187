"""Torch data sets over benchmark records, and loaders with deterministic shuffling and sharding.

* :class:`PairedDataset` (evaluation): whole image pairs; synthetic degradations seeded by each record's key.
* :class:`TrainingMix` (training): PromptIR's task mix (per-task replication), paired random crops, the 8
  flips/rotations, per-sample task labels.
* :func:`build_train_loader`, :func:`build_eval_loader`.

Reproducibility. A training sample is a pure function of ``(seed, epoch, index)``: its crop, flip/rotation and
synthetic degradation all come from ``numpy_generator(seed, epoch, index)`` (:mod:`cplir.seeding`); the shuffled
order is a pure function of ``(seed, epoch)`` (``DistributedSampler``'s recipe, also for one process). So the
batches do not depend on the number of workers, and a run resumed at epoch ``e`` sees what an uninterrupted run saw.
The training sampler yields ``(epoch, index)`` pairs: persistent workers hold their own copy of the data set and
would not see a ``set_epoch`` made in the main process, so the epoch travels with each index. Call
``loader.sampler.set_epoch(e)`` before each epoch, as with ``DistributedSampler``.
"""

import itertools
import random
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from cplir.data.benchmarks import get_benchmark
from cplir.data.degradations import DEGRADATION_PARAMS, degrade, pseudo_depth, scale_depth
from cplir.data.image_io import read_image, read_image_uint8, to_tensor
from cplir.data.records import PairRecord, TaskRecords
from cplir.errors import DataError
from cplir.data.scale import Window, centre_window, downscaled_window, mod_crop, size_mismatch, upscale_window
from cplir.metrics.protocols import center_crop_to_multiple
from cplir.seeding import numpy_generator, torch_generator


def default_repeats(benchmark: str, task_records: TaskRecords,
                    overrides: Optional[Mapping[str, int]] = None) -> Dict[str, int]:
    """Replication factor of each task present: ``overrides`` (a config's ``data.repeats``) where given, else the
    published factor ``benchmark`` registers, else 1."""
    table = {**get_benchmark(benchmark).repeats, **(overrides or {})}
    return {task: table.get(task, 1) for task in task_records}


RESTORATION_CROP = 128  # PromptIR's training crop
SR_LR_CROP = 48  # EDSR's low-resolution training patch: the clean crop is 48·s at scale s

Sample = Dict[str, Union[torch.Tensor, str, int]]
Records = Union[TaskRecords, Sequence[PairRecord]]


def dihedral(img: np.ndarray, k: int) -> np.ndarray:
    """Element ``k`` in 0..7 of the dihedral group on an (H, W, C) image: rotate by 90°·(k mod 4)
    counter-clockwise, then flip left-right when k >= 4. Returns a view."""
    img = np.rot90(img, k % 4, axes=(0, 1))
    return img[:, ::-1] if k >= 4 else img


def _flatten(records: Records) -> Tuple[List[str], List[PairRecord]]:
    """(task labels in order of first appearance, records in order) of TaskRecords or a flat record list."""
    items = [r for rs in records.values() for r in rs] if isinstance(records, Mapping) else list(records)
    tasks = list(records) if isinstance(records, Mapping) else list(dict.fromkeys(r.task for r in items))
    return tasks, items


def _read_pair(record: PairRecord) -> Tuple[np.ndarray, np.ndarray]:
    """Degraded (h, w, 3) and clean (h·s, w·s, 3) images of a file pair of scale s, float32 in [0, 1]; the clean
    image is cut at the top left to ``s`` times the degraded one (it may be up to s - 1 pixels larger)."""
    lq, gt = read_image(record.degraded), read_image(record.clean)
    problem = size_mismatch(lq.shape, gt.shape, record.scale, record.clean)
    if problem:
        raise DataError(f"degraded image {record.degraded}: {problem}; a pair must match, fix or remove it")
    return lq, gt[: lq.shape[0] * record.scale, : lq.shape[1] * record.scale]


def read_clean(record: PairRecord) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Clean image of a synthesised record, uint8 (H, W, 3), and the scene depth d (H, W) in [0, 1] when its
    degradation takes one: the record's depth map, else :func:`pseudo_depth` of the whole clean image.

    Depth belongs to the whole scene: crops take a window of it, so a crop's haze keeps the scene's scale
    instead of being re-normalised to span the full range.
    """
    clean = read_image_uint8(record.clean)
    if "depth" not in DEGRADATION_PARAMS[record.synth]:
        return clean, None
    if record.depth is None:
        return clean, pseudo_depth(clean)
    depth = read_image(record.depth)[..., 0]
    if depth.shape != clean.shape[:2]:
        raise DataError(f"depth map {record.depth} ({depth.shape[1]}x{depth.shape[0]}) does not match the size of "
                        f"{record.clean} ({clean.shape[1]}x{clean.shape[0]})")
    if depth.max() <= 0:
        raise DataError(f"depth map {record.depth} is all zero; a depth map holds distances (larger = farther)")
    return clean, scale_depth(depth)  # over the whole scene, before any crop (MiOIR: depth / max)


def synthesise(record: PairRecord, clean: np.ndarray, depth: Optional[np.ndarray],
                rng: np.random.Generator) -> np.ndarray:
    """The record's degradation of ``clean`` (uint8 (H, W, 3)) with its fixed params; uint8 (H, W, 3)."""
    extra = {} if depth is None else {"depth": depth}
    return degrade(clean, record.synth, rng, **record.params, **extra)


def evenly_spaced(items: Sequence, count: int) -> list:
    """At most ``count`` items spread evenly over ``items`` (a fixed subset: the first, then every k-th)."""
    return list(items[:: max(1, len(items) // count)][:count])


def _sample(lq: np.ndarray, gt: np.ndarray, record: PairRecord, task_id: int) -> Sample:
    return {"lq": to_tensor(lq)[0], "gt": to_tensor(gt)[0], "task": record.task, "task_id": task_id,
            "key": record.key}


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise DataError(f"bad value {value!r} for {name}: give an integer >= {low}")
    return int(value)


class PairedDataset(Dataset):
    """Evaluation set: whole (degraded, clean) pairs in record order.

    A synthesised degradation draws from ``numpy_generator(seed, record.key, record.task)``, so every sample is the
    same whatever order the files were listed in and whichever rank or worker loads it. Nothing is padded (the caller
    pads to the model's multiple) and sizes differ between images: load with batch size 1.

    Args:
        records: TaskRecords or a list of records.
        seed: base seed of the synthetic degradations.
        multiple_of: centre-crop every image to a multiple of this *before* synthesis, as PromptIR's test sets do
            (``crop_img(..., base=16)`` on the clean image, then the noise): the ``promptir`` protocol's inputs.
            At scale s the degraded image is cropped to the multiple and the clean one to the same window × s.

    A record of scale s > 1 (super-resolution) gives ``lq`` (3, H, W) and ``gt`` (3, H·s, W·s): a clean file is
    cut at the top left to s times its degraded file; a clean image whose input is synthesised is first cut to a
    multiple of s (:func:`~cplir.data.scale.mod_crop`), as the SR test sets are.

    Item: ``{"lq": (3, H, W) float32 in [0, 1], "gt": (3, H·s, W·s), "task": str, "task_id": int, "key": str}``,
    with ``task_id`` the index of the task in :attr:`tasks`.
    """

    def __init__(self, records: Records, seed: int = 0, multiple_of: int = 1):
        self.tasks, self.records = _flatten(records)
        self.multiple_of = _check_int("multiple_of", multiple_of, 1)
        self._task_ids = [self.tasks.index(r.task) for r in self.records]
        self.seed = _check_int("seed", seed, 0)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        record = self.records[index]
        if record.synth is None:
            lq, gt = _read_pair(record)
            window = centre_window(lq.shape, self.multiple_of)
            lq, gt = lq[window], gt[upscale_window(window, record.scale)]
        else:
            gt, depth = read_clean(record)
            gt = center_crop_to_multiple(mod_crop(gt, record.scale), self.multiple_of * record.scale)
            depth = None if depth is None else center_crop_to_multiple(depth, self.multiple_of)
            lq = synthesise(record, gt, depth, numpy_generator(self.seed, record.key, record.task))
        return _sample(lq, gt, record, self._task_ids[index])


class TrainingMix(Dataset):
    """PromptIR's training mix: every task's records replicated ``repeats[task]`` times in one list.

    Sample ``index`` of epoch ``e`` is a ``crop_size`` square cut at the same place from the degraded and clean
    images, then (``augment``) one of the 8 flips/rotations applied to both; a synthesised degradation is applied
    to the clean crop (as PromptIR adds noise to the patch), so its cost does not grow with the image. All of it
    draws from ``numpy_generator(seed, e, index)``. An image smaller than the crop raises DataError naming it:
    padding would teach the network the padding's artefacts.

    Super-resolution (every record of scale s > 1; one scale per mix): ``crop_size`` is the clean (HR) crop and the
    degraded (LR) crop is ``crop_size / s`` at the aligned place (the window is drawn on the LR grid, then scaled);
    the flip/rotation is applied to both. A synthesised LR crop is the crop of the whole (mod-cropped) image's
    downscale, computed from its HR window and a margin (:func:`~cplir.data.scale.downscaled_window`).

    Args:
        task_records: records per task; every task needs at least one record.
        repeats: replication factor per task (e.g. :func:`default_repeats`); tasks absent from it get 1.
        crop_size: side of the square clean (HR) training crop, a multiple of the scale; default 128, or
            :data:`SR_LR_CROP` · s at scale s (EDSR's 48×48 LR patches).
        augment: apply a random element of the dihedral group (flips and 90° rotations).
        seed: base seed of all per-sample randomness.

    Attributes:
        tasks: task labels; ``task_id`` indexes this list.
        samples_per_task: samples of each task in one epoch (records × repeats).
        scale: the records' scale s (1 for restoration).

    Item: ``{"lq": (3, crop / s, crop / s) float32 in [0, 1], "gt": (3, crop, crop), "task": str, "task_id": int,
    "key": str}``; the index may be an int (epoch from :meth:`set_epoch`) or an ``(epoch, index)`` pair (from
    :class:`EpochSampler`).
    """

    def __init__(self, task_records: TaskRecords, repeats: Mapping[str, int], crop_size: Optional[int] = None,
                 augment: bool = True, seed: int = 0):
        empty = [task for task, records in task_records.items() if not records]
        if not task_records or empty:
            raise DataError(f"the training mix needs records for every task; none for {empty or 'any task'}")
        unknown = sorted(set(repeats) - set(task_records))
        if unknown:
            raise DataError(f"repeats names unknown task(s) {unknown}; the tasks are {list(task_records)}")
        self.tasks, self.records = _flatten(task_records)
        self.repeats = {task: _check_int(f"repeats[{task!r}]", repeats.get(task, 1), 1) for task in self.tasks}
        scales = sorted({r.scale for r in self.records})
        if len(scales) > 1:
            raise DataError(f"the training mix holds records of scales {scales}; train one scale at a time (their "
                            "low-resolution crops differ in size)")
        self.scale = scales[0]
        default = RESTORATION_CROP if self.scale == 1 else SR_LR_CROP * self.scale
        self.crop_size = _check_int("crop_size", default if crop_size is None else crop_size, 1)
        if self.crop_size % self.scale:
            raise DataError(f"crop_size {self.crop_size} is not a multiple of the scale {self.scale}; the "
                            f"low-resolution crop must be whole (e.g. {SR_LR_CROP * self.scale})")
        self.augment = bool(augment)
        self.seed = _check_int("seed", seed, 0)
        self.epoch = 0
        self.samples_per_task = {task: len(task_records[task]) * self.repeats[task] for task in self.tasks}
        self._task_ids = [self.tasks.index(r.task) for r in self.records]
        # Index of the record behind each sample, as a compact array (cheap to copy into workers).
        parts, start = [], 0
        for task in self.tasks:
            count = len(task_records[task])
            parts.append(np.tile(np.arange(start, start + count), self.repeats[task]))
            start += count
        self._record_of = np.concatenate(parts)

    def record(self, index: int) -> PairRecord:
        """The record behind sample ``index``."""
        return self.records[self._record_of[index]]

    def set_epoch(self, epoch: int) -> None:
        """Epoch used when the data set is indexed with a plain int."""
        self.epoch = _check_int("epoch", epoch, 0)

    def __len__(self) -> int:
        return len(self._record_of)

    def __getitem__(self, item: Union[int, Tuple[int, int]]) -> Sample:
        epoch, index = item if isinstance(item, tuple) else (self.epoch, item)
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range for a mix of {len(self)} samples")
        rng = numpy_generator(self.seed, epoch, index)
        record, s = self.record(index), self.scale
        if record.synth is None:
            lq, gt = _read_pair(record)
            window = self._random_window(lq.shape, record, rng)
            lq, gt = lq[window], gt[upscale_window(window, s)]
        elif s == 1:
            clean, depth = read_clean(record)
            window = self._random_window(clean.shape, record, rng)
            gt = clean[window]
            lq = synthesise(record, gt, None if depth is None else depth[window], rng)
        else:
            clean = mod_crop(read_clean(record)[0], s)
            window = self._random_window((clean.shape[0] // s, clean.shape[1] // s), record, rng)
            gt = clean[upscale_window(window, s)]
            lq = downscaled_window(clean, window, s, lambda part: synthesise(record, part, None, rng))
        if self.augment:
            k = int(rng.integers(8))
            lq, gt = dihedral(lq, k), dihedral(gt, k)
        return _sample(lq, gt, record, self._task_ids[self._record_of[index]])

    def _random_window(self, shape: Tuple[int, ...], record: PairRecord, rng: np.random.Generator) -> Window:
        """A uniformly placed crop window on the (low-resolution) grid of ``shape``."""
        size, s = self.crop_size // self.scale, self.scale
        h, w = shape[:2]
        if h < size or w < size:
            raise DataError(f"image {record.clean} ({w * s}x{h * s}) is smaller than the training crop "
                            f"{self.crop_size}x{self.crop_size}; lower crop_size or remove the image")
        top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        return slice(top, top + size), slice(left, left + size)


# ----------------------------------------------------------------------------------------------------------------
# Samplers and loaders
# ----------------------------------------------------------------------------------------------------------------
def _check_rank(rank: int, world_size: int) -> None:
    _check_int("world_size", world_size, 1)
    if _check_int("rank", rank, 0) >= world_size:
        raise DataError(f"rank {rank} must be smaller than world_size {world_size}")


class EpochSampler(Sampler):
    """Training order: a permutation per ``(seed, epoch)``, sharded across ranks; yields ``(epoch, index)``.

    Shuffling and sharding are ``DistributedSampler(shuffle=True, drop_last=True)``'s, so every rank gets the same
    number of samples and one process gets the same order as ``world_size=1`` of that recipe.
    """

    def __init__(self, dataset: Dataset, seed: int = 0, rank: int = 0, world_size: int = 1, epoch: int = 0):
        _check_rank(rank, world_size)
        self.base = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                       seed=_check_int("seed", seed, 0), drop_last=True)
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from this rank's ``start``-th sample on (a resumed run skips what it has seen)."""
        self.epoch = _check_int("epoch", epoch, 0)
        self.start = _check_int("start", start, 0)
        self.base.set_epoch(self.epoch)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(index)) for index in itertools.islice(self.base, self.start, None))

    def __len__(self) -> int:
        return len(self.base) - self.start


class ShardSampler(Sampler):
    """Evaluation order: indices ``rank, rank + world_size, ...``; every index on exactly one rank, none repeated
    (ranks may get one sample more than others)."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        _check_rank(rank, world_size)
        self.indices = range(rank, length, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _seed_worker(worker_id: int) -> None:
    """Seed a worker's global generators from its torch seed (the loader's seeded base seed + worker id).

    Samples draw from their own generators; this makes third-party code that uses ``random`` or ``np.random``
    reproducible too.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _loader(dataset: Dataset, sampler: Sampler, batch_size: int, num_workers: int, seed: int,
            drop_last: bool) -> DataLoader:
    num_workers = _check_int("num_workers", num_workers, 0)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      worker_init_fn=_seed_worker, generator=torch_generator(seed),
                      persistent_workers=num_workers > 0, drop_last=drop_last, pin_memory=torch.cuda.is_available())


def build_train_loader(dataset: Dataset, batch_size: int, num_workers: int = 0, seed: int = 0, rank: int = 0,
                       world_size: int = 1, epoch: int = 0) -> DataLoader:
    """Shuffled training batches of ``batch_size`` (per rank), incomplete last batch dropped.

    Call ``loader.sampler.set_epoch(e)`` before each epoch. Batch: ``{"lq": (B, 3, crop, crop), "gt": same,
    "task": list of B str, "task_id": (B,) int64, "key": list of B str}``.
    """
    sampler = EpochSampler(dataset, seed, rank, world_size, epoch)
    batch_size = _check_int("batch_size", batch_size, 1)
    if len(sampler) < batch_size:
        raise DataError(f"the training set gives {len(sampler)} sample(s) per rank, fewer than one batch of "
                        f"{batch_size}; add data, raise the repeats or lower the batch size")
    return _loader(dataset, sampler, batch_size, num_workers, seed, drop_last=True)


def build_eval_loader(dataset: Dataset, num_workers: int = 0, rank: int = 0, world_size: int = 1) -> DataLoader:
    """Evaluation batches of one image each (sizes differ), this rank's shard (:class:`ShardSampler`) in order.

    Batch: ``{"lq": (1, 3, H, W), "gt": (1, 3, H, W), "task": [str], "task_id": (1,) int64, "key": [str]}``.
    """
    return _loader(dataset, ShardSampler(len(dataset), rank, world_size), 1, num_workers, 0, drop_last=False)
