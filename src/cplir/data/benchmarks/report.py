"""What a benchmark scan finds besides its records: missing pairs, stray files, empty tasks, list files.

Adapters never drop a problem silently; they write what they find into a :class:`DataReport`:

* ``missing_pairs`` (:class:`MissingPair`): a degraded file whose clean counterpart does not exist, or a file
  named by a list file that does not exist. The sample is left out of the records.
* ``stray_files``: entries of a scanned image folder that are not images (``notes.txt``, ``.DS_Store``, an
  unexpected sub-folder). They are ignored.
* ``empty_tasks`` (:class:`EmptyTask`): a task folder that holds no image.
* ``counts``: records per task (0 when its folder is empty or none of its pairs is complete).
* ``list_files``: the list files (PromptIR's ``denoise.txt`` ...) that restricted the samples.
* ``symlink_loops``: sub-folders that lead back to a folder the scan already entered; they are not followed (a
  loop would otherwise repeat every image under it dozens of times).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from cplir.errors import DataError

MAX_LISTED = 10  # problems listed in one error message; the count says how many there are in all


@dataclass(frozen=True)
class MissingPair:
    """A sample left out because a file it needs does not exist.

    Attributes:
        task: task label of the sample.
        missing: the file that should exist (with stem matching: ``folder/stem.*``).
        referenced_by: the degraded file that needs it, or the list file that names it.
    """

    task: str
    missing: Path
    referenced_by: Path


@dataclass(frozen=True)
class EmptyTask:
    """A task whose folder holds no image."""

    task: str
    folder: Path


@dataclass
class DataReport:
    """What a scan found besides the records (see the module docstring)."""

    benchmark: str
    root: Path
    split: str
    counts: Dict[str, int] = field(default_factory=dict)
    missing_pairs: List[MissingPair] = field(default_factory=list)
    stray_files: List[Path] = field(default_factory=list)
    empty_tasks: List[EmptyTask] = field(default_factory=list)
    list_files: List[Path] = field(default_factory=list)
    symlink_loops: List[Path] = field(default_factory=list)

    def errors(self, allow_missing: bool = False) -> List[str]:
        """Messages for the problems that make the data set unusable for training (empty when it is fine)."""
        messages = [f"task {e.task!r}: no image in {e.folder}; add the images or leave the task out "
                    f"(option tasks= / classes=)" for e in self.empty_tasks]
        empty = {e.task for e in self.empty_tasks}
        starved = [task for task, count in self.counts.items() if count == 0 and task not in empty]
        messages += [f"task {task!r} has no sample: none of its files has its counterpart (listed below)"
                     for task in starved]
        if self.missing_pairs and (starved or not allow_missing):
            lines = [f"  [{m.task}] {m.missing} (needed by {m.referenced_by})" for m in self.missing_pairs[:MAX_LISTED]]
            more = len(self.missing_pairs) - MAX_LISTED
            messages.append(f"{len(self.missing_pairs)} sample(s) lack a file:\n" + "\n".join(lines)
                            + (f"\n  ... and {more} more" if more > 0 else "")
                            + "\nadd the missing files or fix their names"
                            + ("" if allow_missing else ", or pass allow_missing=True to skip them"))
        return messages

    def raise_errors(self, allow_missing: bool = False) -> None:
        """Raise one DataError listing :meth:`errors`, if any."""
        messages = self.errors(allow_missing)
        if messages:
            raise DataError(f"benchmark {self.benchmark!r} ({self.split} split) at {self.root} is not usable:\n"
                            + "\n".join(messages))
