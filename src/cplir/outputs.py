"""Output paths: checked before any work starts, and never overwritten unless the user says so.

Every command that writes (``train``, ``test``, ``export``, ``data preview``) checks its destination first, so a
read-only folder, a file where a folder is needed or an existing result stops the command in its first second
with one line, not after an hour of work:

* :func:`prepare_output_dir`: a folder to write into exists (or is created) and is writable;
* :func:`prepare_output_file`: a file to write: its folder is writable and an existing file is refused unless
  ``overwrite``;
* :func:`refuse_existing`: named results inside a folder (``results.json``, an ``images/`` tree);
* :func:`check_free_space`: room for a file of an estimated size;
* :func:`collision_free_names`: output names for input keys that keep their folders and cannot collide;
* :func:`write_text_atomic`: a results file that is either the old or the new one, never half written.
"""

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, Sequence, Union

from cplir.errors import OutputError

PathLike = Union[str, os.PathLike]


def prepare_output_dir(folder: PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` (with its parents) if needed and make sure files can be written into it."""
    folder = Path(folder)
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot use {folder} as the {what}: {parent} is a file, not a folder; choose "
                                  "another path")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # the one reliable test of writability (root, ACLs, mounts)
            pass
    except OSError as err:
        raise OutputError(f"cannot write the {what} {folder}: {err.strerror or err}; choose a writable "
                          "location") from err
    return folder


def prepare_output_file(path: PathLike, overwrite: bool = False, what: str = "output file") -> Path:
    """Check that ``path`` can be written: not a folder, not an existing file (unless ``overwrite``), and its
    folder writable (created if needed)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"the {what} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"the {what} {path} already exists; choose another name or pass --overwrite")
    prepare_output_dir(path.parent, f"folder of the {what}")
    return path


def refuse_existing(folder: PathLike, names: Iterable[str], overwrite: bool = False) -> None:
    """Refuse to write into ``folder`` when it already holds one of ``names`` (a file, or a non-empty folder)."""
    folder = Path(folder)
    found = [name for name in names if (folder / name).is_file()
             or ((folder / name).is_dir() and any((folder / name).iterdir()))]
    if found and not overwrite:
        raise OutputError(f"{folder} already holds {', '.join(found)} from an earlier run; choose another --out "
                          "or pass --overwrite to replace them")


def check_free_space(folder: PathLike, needed: int, what: str) -> None:
    """Refuse when the file system of ``folder`` (an existing folder) has less than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OutputError(f"{folder} has {free / 2**20:.0f} MiB free but {what} needs about "
                          f"{needed / 2**20:.0f} MiB; free some space or write elsewhere")


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _relative(key: str) -> PurePosixPath:
    """``key`` as a path that stays inside the output folder: anchors dropped, ``..`` replaced."""
    parts = [("__" if part == ".." else part) for part in PurePosixPath(key.replace("\\", "/")).parts
             if part not in ("/", "", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath("_")


def collision_free_names(keys: Sequence[str], suffix: str = ".png") -> Dict[str, str]:
    """Output names (relative POSIX paths) for input ``keys`` (root-relative paths of the inputs).

    A name keeps the key's folders and swaps its extension for ``suffix`` (``a/x.jpg`` -> ``a/x.png``); keys that
    would share a name keep their own extension (``y.png`` -> ``y.png.png``, ``y.jpg`` -> ``y.jpg.png``), and any
    name still taken gets ``~1``, ``~2``, ... Absolute keys and ``..`` never lead outside the output folder.
    """
    first = {key: _relative(key).with_suffix(suffix) for key in keys}
    shared = Counter(first.values())
    names, used = {}, set()
    for key in keys:
        name = first[key] if shared[first[key]] == 1 else PurePosixPath(f"{_relative(key)}{suffix}")
        candidate, n = name, 0
        while candidate in used:
            n += 1
            candidate = name.with_name(f"{name.stem}~{n}{suffix}")
        used.add(candidate)
        names[key] = candidate.as_posix()
    return names
