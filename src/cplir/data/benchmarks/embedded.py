"""The ``embedded`` benchmark: the photographs of :mod:`cplir.data.embedded` with synthetic degradations.

Use ``root: embedded`` in a config (there is no folder to point at)::

    data:
      train: {benchmark: embedded, root: embedded, split: train, options: {variant: three_task}}
      test:  [{benchmark: embedded, root: embedded, split: test, options: {variant: three_task}}]

Each variant imitates a registered benchmark (:data:`VARIANTS`): its tasks, and for each task the recipe that
benchmark registers (its own synthesis, or the stand-in for its real pairs). Option ``tasks`` picks a subset.

* ``three_task``: ``denoise_15/25/50`` (``noise_promptir``, ``params={"sigma": σ}``), ``derain`` (``rain``),
  ``dehaze`` (``haze``). Tasks: ``denoise``, ``derain``, ``dehaze``.
* ``five_task``: adds ``deblur`` (Gaussian ``blur``, standing in for GoPro) and ``enhance`` (``lowlight``,
  standing in for LOL).
* ``seven_task``: MiOIR's seven tasks ``sr, blur, noise, jpeg, rain, haze, lowlight`` (in-distribution levels).
* ``cdd11``: the 11 CDD-11 classes (``cdd11_<class>`` composites), tasks named by class.
* ``dehaze`` (standing in for RESIDE indoor) and ``derain`` (for SPA-Data): one task each.
* ``sr_x2``, ``sr_x3``, ``sr_x4``: super-resolution, the LR input by MATLAB bicubic (records of scale s).

Records per task: 4 in train and 2 in test, except the five-task variant's test split, which
has ``denoise_25`` only (AdaIR's five-task table reports BSD68 at σ=25). Every record is synthesised
(``synth``/``params``) with key ``PACKAGE/FILE`` (e.g. ``skimage/chelsea.png``), which seeds its degradation; a
record whose degradation takes a depth map (haze, the CDD-11 classes) carries its scene's depth map when the
scene has one. The training mix replicates every task once (the variants are demos, not the published mixes).
"""

import logging
from pathlib import Path
from typing import Dict, Optional, Tuple

from cplir.data.benchmarks.options import choose_subset
from cplir.data.benchmarks.registry import get_benchmark, register_benchmark
from cplir.data.benchmarks.report import DataReport
from cplir.data.benchmarks.sr import SR_TASKS
from cplir.data.degradations import DEGRADATION_PARAMS, size_ratio
from cplir.data.embedded import ROOT_NAME, SCENES, scene_views
from cplir.data.records import PairRecord, TaskRecords
from cplir.errors import DataError

logger = logging.getLogger(__name__)

VARIANTS: Dict[str, Tuple[str, Optional[Tuple[str, ...]]]] = {
    "three_task": ("promptir_three_task", None),
    "five_task": ("adair_five_task", None),
    "seven_task": ("mioir_seven_task", None),
    "cdd11": ("cdd11", None),
    "dehaze": ("reside_indoor", None),
    "derain": ("spa_data", None),
    **{task: ("sr_folder", (task,)) for task in SR_TASKS},
}
"""Variant -> (the benchmark whose tasks and recipes it takes, its tasks when not all of them)."""


@register_benchmark(ROOT_NAME, folder=False)
def embedded(root: Path, split: str, report: DataReport, *, variant="three_task", tasks=None,
             max_size=256) -> TaskRecords:
    """The embedded data set: allow-listed package photographs with synthetic degradations (module docstring).

    ROOT must be ``embedded`` (there is no folder); ``report`` stays empty (nothing can be missing).

    Options:
        variant: one of :data:`VARIANTS` (module docstring).
        tasks: subset of the variant's tasks (``denoise`` stands for all its σ); default all.
        max_size: side of the centre crop of the test images (None = whole images).
    """
    if Path(root).name != ROOT_NAME:
        raise DataError(f"the embedded data set has no folder: set root to {ROOT_NAME!r}, not {str(root)!r}")
    if variant not in VARIANTS:
        raise DataError(f"bad value {variant!r} for option variant: choose one of {', '.join(VARIANTS)}")
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise DataError(f"bad value {max_size!r} for option max_size: give a positive integer or null")
    name, variant_tasks = VARIANTS[variant]
    source = get_benchmark(name)
    valid = variant_tasks or source.tasks
    chosen = choose_subset("tasks", valid if tasks is None else tasks, valid)
    recipes = {label: recipe for task in chosen for label, recipe in source.recipes(task, split).items()}
    views = scene_views(split, max_size)
    records: TaskRecords = {}
    for task, recipe in recipes.items():
        takes_depth = "depth" in DEGRADATION_PARAMS[recipe.synth]
        records[task] = [PairRecord(task=task, clean=clean, synth=recipe.synth, params=dict(recipe.params), key=key,
                                    depth=depth if takes_depth else None, scale=size_ratio(recipe.synth, recipe.params))
                         for key, clean, depth in views]
    scenes = [scene.name for scene in SCENES if scene.split == split]
    logger.info("embedded %s %s: %d scenes (%s), %d views, %d tasks, %d records", variant, split, len(scenes),
                ", ".join(scenes), len(views), len(records), sum(map(len, records.values())))
    return records
