"""`cplir data synthesize`: a fixed degraded set written once, as MiOIR makes its seven-task data.

MiOIR synthesises one degraded image per clean image and task offline (``data_script/add_MiO_*_degradation.py``),
trains on sub-images cut from that fixed set and tests on a fixed degraded set, instead of drawing new
degradations every epoch. :func:`synthesize` writes such a set from a folder of clean images (DF2K for training,
the test images for testing), with the same recipes and per-image generators as the on-the-fly
``mioir_seven_task`` benchmark, so an offline image equals the online one for the same seed, and records every
image's seed and parameters in a manifest (format: :mod:`cplir.data.synthesised_set`).

Resumable and never overwriting: a run into a folder that holds a set of the same settings writes only what is
missing (each PNG appears atomically, then its manifest line); a folder with other settings is refused. The
``mioir_synthesised`` benchmark reads the set.
"""

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from cplir.data.benchmarks import load_benchmark
from cplir.data.datasets import read_clean, synthesise
from cplir.data.degradations import MIOIR_TASKS, PARAMETER_DRAWS
from cplir.data.image_io import write_png
from cplir.data.synthesised_set import (FORMAT, MANIFEST_FILE, SETTINGS_FILE, degraded_path, read_manifest,
                                        read_settings)
from cplir.errors import DataError
from cplir.seeding import numpy_generator, seed_material


@dataclass
class SynthesisSummary:
    """What a run did: images ``written`` now, ``skipped`` because an earlier run wrote them."""

    out: Path
    written: int
    skipped: int


def synthesize(source, out, *, tasks: Sequence[str] = MIOIR_TASKS, level: str = "id", sr_mode: str = "torch",
               jpeg_codec: str = "diffjpeg", seed: int = 0, progress: bool = False) -> SynthesisSummary:
    """Write the degraded set of the clean images under ``source`` into ``out`` (module docstring).

    Args:
        source: folder of clean images (searched recursively).
        out: output folder; created, or resumed when it holds a set of the same settings.
        tasks, level, sr_mode, jpeg_codec: the options of the ``mioir_seven_task`` benchmark.
        seed: base seed; each image's generator is ``numpy_generator(seed, clean key, task)``.
        progress: show a progress bar.
    """
    source, out = Path(source).expanduser().absolute(), Path(out).expanduser().absolute()
    records = load_benchmark("mioir_seven_task", source, "test", tasks=list(tasks), level=level, sr_mode=sr_mode,
                             jpeg_codec=jpeg_codec)
    settings = {"format": FORMAT, "source": str(source), "tasks": list(records), "level": level,
                "sr_mode": sr_mode, "jpeg_codec": jpeg_codec, "seed": seed}
    if (out / SETTINGS_FILE).is_file():
        earlier = read_settings(out)
        if earlier != settings:
            changed = sorted(k for k in settings if earlier.get(k) != settings[k])
            raise DataError(f"{out} holds a set synthesised with other settings ({', '.join(changed)} differ); "
                            "it is never overwritten: choose another output folder")
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    done = read_manifest(out)
    written = skipped = 0
    items = [r for task_records in records.values() for r in task_records]
    with (out / MANIFEST_FILE).open("a") as manifest:
        for record in tqdm(items, desc="synthesize", unit="img", disable=not progress, dynamic_ncols=True):
            relative = degraded_path(record.task, record.key)
            if (record.task, record.key) in done and (out / relative).is_file():
                skipped += 1
                continue
            rng = numpy_generator(seed, record.key, record.task)
            drawn = PARAMETER_DRAWS[record.synth](copy.deepcopy(rng), record.params.get("level", "id"))
            if not (out / relative).is_file():  # a file without its manifest line is complete (atomic write)
                clean, depth = read_clean(record)
                write_png(out / relative, synthesise(record, clean, depth, rng))
                written += 1
            else:
                skipped += 1
            entry = {"task": record.task, "clean": record.key, "degraded": relative,
                     "seed": str(seed_material(seed, record.key, record.task)),
                     "params": {**record.params, **drawn}}
            manifest.write(json.dumps(entry) + "\n")
            manifest.flush()
    return SynthesisSummary(out, written, skipped)

