"""The benchmark registry: a name -> its adapter, its tasks, their published repeats and their recipes.

Use::

    records = load_benchmark("promptir_three_task", "/data/promptir", split="train")
    records, report = scan_benchmark("cdd11", "/data/CDD-11", split="test")   # for ``cplir data check``

An adapter ``adapter(root: Path, split: str, report: DataReport, **options) -> TaskRecords`` turns a root folder
into records grouped by task; its keyword-only parameters are its options. :func:`scan_benchmark` returns
``(records, report)`` and raises only when the layout itself is wrong (a missing root or task folder, an unknown
option or value, an unreadable list file, a list entry or file whose clean counterpart cannot be derived, two
targets sharing a stem): ``cplir data check`` prints the report and uses ``report.errors()`` for its exit status.
:func:`load_benchmark` scans and then raises one :class:`~cplir.errors.DataError` for every problem that would
spoil training: missing pairs (up to 10 listed, with the count; ``allow_missing=True`` skips them instead, with a
logged warning) and tasks without samples (always fatal: a whole task never disappears silently). Unreadable
images are only found by opening them: the data sets raise :class:`~cplir.errors.ImageReadError` at load time,
and :func:`~cplir.data.benchmarks.verify_images` checks every file up front.
"""

import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from cplir.data.benchmarks.report import DataReport
from cplir.data.records import TaskRecords
from cplir.errors import DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")

Adapter = Callable[..., TaskRecords]
"""``adapter(root: Path, split: str, report: DataReport, **options) -> TaskRecords``."""


@dataclass(frozen=True)
class TaskRecipe:
    """How a task's degraded image is made from a clean one: degradation ``synth`` (a name of
    :data:`cplir.data.degradations.DEGRADATIONS`) with the fixed keyword arguments ``params``."""

    synth: str
    params: Mapping = field(default_factory=dict)


Recipes = Callable[[str, str], Dict[str, TaskRecipe]]
"""``recipes(task, split) -> {task label: TaskRecipe}``; one task may give several labels (denoising: one per σ)."""


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark.

    Attributes:
        name: registry name.
        adapter: reads the layout (module docstring).
        folder: the root is a folder to check; False when it is a name (``embedded``).
        tasks: the values its option ``tasks`` (or ``classes``) chooses from, in order.
        repeats: per-epoch replication of each task label in the published training mix (absent labels: 1).
        recipes: for each of ``tasks``, the synthetic recipe of its labels: the benchmark's own for a task it
            synthesises (PromptIR's noise), otherwise the degradation that stands in for its real pairs when only
            clean images exist (rain streaks for Rain100L; the embedded data set builds its variants from these).
    """

    name: str
    adapter: Adapter
    folder: bool = True
    tasks: Tuple[str, ...] = ()
    repeats: Mapping[str, int] = field(default_factory=dict)
    recipes: Optional[Recipes] = None


BENCHMARKS: Dict[str, Benchmark] = {}


def register_benchmark(name: str, *, folder: bool = True, tasks: Sequence[str] = (),
                       repeats: Optional[Mapping[str, int]] = None, recipes: Optional[Recipes] = None):
    """Register an adapter under ``name`` (a decorator) with what training needs to know about its tasks
    (attributes of :class:`Benchmark`)."""

    def decorate(adapter: Adapter) -> Adapter:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} is registered twice")
        BENCHMARKS[name] = Benchmark(name, adapter, folder, tuple(tasks), dict(repeats or {}), recipes)
        return adapter

    return decorate


def list_benchmarks() -> List[str]:
    return sorted(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name``; DataError naming the choices when there is none."""
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; choose one of {', '.join(list_benchmarks())}")
    return BENCHMARKS[name]


def benchmark_options(name: str) -> List[str]:
    """Option names accepted by benchmark ``name`` (besides ``allow_missing`` of :func:`load_benchmark`)."""
    params = inspect.signature(get_benchmark(name).adapter).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def scan_benchmark(name: str, root: Union[str, Path], split: str = "train",
                   **options) -> Tuple[TaskRecords, DataReport]:
    """Records and problem report of benchmark ``name`` under ``root``; pairing problems do not raise.

    Raises DataError for an unknown benchmark, split or option and for a layout that cannot be read at all.
    """
    benchmark = get_benchmark(name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    unknown = sorted(set(options) - set(benchmark_options(name)))
    if unknown:
        raise DataError(f"unknown option(s) {unknown} for benchmark {name!r}; valid options: "
                        f"{', '.join(benchmark_options(name) + ['allow_missing'])}")
    root = Path(root).expanduser().absolute() if benchmark.folder else Path(root)
    if benchmark.folder and not root.is_dir():
        adapter = benchmark.adapter
        raise DataError(f"data root {root} does not exist or is not a folder; point the {name!r} benchmark at "
                        f"the folder that holds its data (layout: see `{adapter.__module__}.{adapter.__name__}`)")
    report = DataReport(benchmark=name, root=root, split=split)
    records = benchmark.adapter(root, split, report, **options)
    report.counts = {task: len(items) for task, items in records.items()}
    return records, report


def load_benchmark(name: str, root: Union[str, Path], split: str = "train", *, allow_missing: bool = False,
                   **options) -> TaskRecords:
    """Records of benchmark ``name`` under ``root``, grouped by task, each list sorted by key.

    Args:
        name: one of :func:`list_benchmarks`.
        root: the benchmark's root folder (layout: the adapter's docstring).
        split: ``"train"`` or ``"test"``.
        allow_missing: skip samples whose pair is missing (logged) instead of raising.
        **options: the adapter's options (:func:`benchmark_options`).

    Raises:
        DataError: unknown benchmark/split/option, missing folders, missing pairs, tasks without samples.
    """
    records, report = scan_benchmark(name, root, split, **options)
    report.raise_errors(allow_missing)
    if report.symlink_loops:
        logger.warning("%s: %d symlink loop(s) not followed, e.g. %s", name, len(report.symlink_loops),
                       report.symlink_loops[0])
    if report.missing_pairs:
        logger.warning("%s: skipped %d sample(s) without a pair (allow_missing=True), e.g. %s", name,
                       len(report.missing_pairs), report.missing_pairs[0].missing)
    return records
