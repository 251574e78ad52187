"""The photographs of the embedded data set: colour images that ship inside installed packages, so the demo and
the tests need no download. The ``embedded`` benchmark (:mod:`cplir.data.benchmarks.embedded`) degrades them
synthetically; this module finds the files, crops the test views and derives the depth maps.

Scenes and split
----------------
The split is fixed and by scene, so no test scene is ever seen in training; the two views of the stereo
motorcycle are one scene and stay together:

* train: scikit-image ``astronaut``, ``coffee``, ``motorcycle_left`` + ``motorcycle_right`` (4 views);
* test: scikit-image ``chelsea`` and ``rocket``, each centre-cropped to at most ``max_size`` (default 256) pixels
  per side, so a tiny model evaluates in seconds.

The list is fixed: the set is the same on every machine, whatever else is installed (scikit-learn's ``china`` and
``flower`` photographs are left out for that reason), and the benchmark logs its size and scenes at every load.
Only the files of this allow-list are read, straight from scikit-image's installed ``skimage/data`` folder; no
scikit-image data function is called, so nothing is ever downloaded. Records of
the training split point at those files. Files derived from them (the cropped test images and the depth maps) are
written once to the cache folder :func:`cache_dir` and rewritten when the package files are newer.

Depth for haze
--------------
The motorcycle scene ships a ground-truth disparity map (Middlebury 2014, of the left view). Its depth is
``f·B / disparity`` (larger disparity = nearer), min-max normalised to [0, 1] with larger = farther; the unknown
scale ``f·B`` cancels in the normalisation. Pixels of unknown disparity (occlusions) take the background side: the
smaller of the nearest known disparities to their left and right in the row. The right view's disparity is the
left one warped by it (left pixel ``(y, x)`` shows at ``(y, x - d)``; the nearest wins). The depth maps are stored
as 16-bit PNG files in the cache; :func:`scene_views` returns them with each view. The other scenes have no depth:
their haze uses the documented pseudo-depth of :func:`cplir.data.degradations.pseudo_depth` (vertical gradient and
dark channel of the clean image).
"""

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from cplir.data.degradations.haze import stretch_depth
from cplir.data.image_io import read_image_uint8
from cplir.errors import DataError

ROOT_NAME = "embedded"
CACHE_ENV = "CPLIR_CACHE"


@dataclass(frozen=True)
class Scene:
    """One photographed scene of the allow-list.

    Attributes:
        name: scene name.
        split: ``"train"`` or ``"test"``; every view of the scene is in it.
        package: the package that ships the files (``"skimage"``).
        files: its views, file names in the package's data folder; a stereo scene lists (left, right).
        disparity: ``.npz`` file of the left view's disparity in pixels (``inf`` = unknown), or None.
    """

    name: str
    split: str
    package: str
    files: Tuple[str, ...]
    disparity: Optional[str] = None


SCENES = (
    Scene("astronaut", "train", "skimage", ("astronaut.png",)),
    Scene("coffee", "train", "skimage", ("coffee.png",)),
    Scene("motorcycle", "train", "skimage", ("motorcycle_left.png", "motorcycle_right.png"), "motorcycle_disp.npz"),
    Scene("chelsea", "test", "skimage", ("chelsea.png",)),
    Scene("rocket", "test", "skimage", ("rocket.jpg",)),
)
PACKAGE_DATA = {"skimage": "data"}  # data folder inside each package


# Bump when the derived files change for the same package files (crop rule, depth algorithm): old caches are
# then simply not found, instead of being served stale.
CACHE_VERSION = 2


def cache_dir() -> Path:
    """Folder of the derived files: ``$CPLIR_CACHE/embedded/v<N>``, else under ``$XDG_CACHE_HOME/cplir`` or
    ``~/.cache/cplir``."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "cplir")
    return Path(base).expanduser() / ROOT_NAME / f"v{CACHE_VERSION}"


def _package_data(package: str) -> Optional[Path]:
    """Data folder of an installed ``package``, found without importing it; None when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / PACKAGE_DATA[package]


def _cached(path: Path, sources: Sequence[Path], make: Callable[[], np.ndarray]) -> Path:
    """``path``, first written as a PNG of ``make()`` (uint8 RGB or uint16 grey) when it is missing or older
    than one of ``sources``."""
    if path.is_file() and path.stat().st_mtime >= max(source.stat().st_mtime for source in sources):
        return path
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # renamed into place: no half-written file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(make()).save(temporary, format="PNG")
        os.replace(temporary, path)
    except OSError as error:
        raise DataError(f"cannot write the embedded data cache file {path} ({error}); set {CACHE_ENV} to a "
                        "writable folder") from error
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _centre_crop(array: np.ndarray, max_size: Optional[int]) -> np.ndarray:
    """Centre window of at most ``max_size`` pixels per side of an (H, W) or (H, W, C) array."""
    if max_size is None:
        return array
    h, w = array.shape[:2]
    top, left = max(0, (h - max_size) // 2), max(0, (w - max_size) // 2)
    return array[top:top + max_size, left:left + max_size]


def _fill_unknown(disparity: np.ndarray) -> np.ndarray:
    """(H, W) disparity with each unknown (non-finite) pixel set to the smaller of the nearest known values to its
    left and right in the row: an occluded pixel belongs to the background."""
    h, w = disparity.shape
    known = np.isfinite(disparity)
    columns = np.broadcast_to(np.arange(w), (h, w))
    left = np.maximum.accumulate(np.where(known, columns, -1), axis=1)
    right = np.minimum.accumulate(np.where(known, columns, w)[:, ::-1], axis=1)[:, ::-1]
    padded = np.concatenate([disparity, np.full((h, 1), np.inf)], axis=1)  # column w (also index -1): none
    rows = np.arange(h)[:, None]
    return np.where(known, disparity, np.minimum(padded[rows, left], padded[rows, right]))


def _right_view_disparity(left: np.ndarray) -> np.ndarray:
    """(H, W) disparity of the right view from the left view's: left pixel ``(y, x)`` shows at ``(y, x - d)``;
    where several land on one pixel the nearest (largest ``d``) wins; pixels no left pixel reaches are ``inf``."""
    ys, xs = np.nonzero(np.isfinite(left))
    d = left[ys, xs]
    target = np.round(xs - d).astype(int)
    inside = target >= 0
    right = np.zeros_like(left)  # disparities are positive: 0 marks "not reached"
    np.maximum.at(right, (ys[inside], target[inside]), d[inside])
    return np.where(right > 0, right, np.inf)


def disparity_depth(disparity_file: Path, view: int) -> np.ndarray:
    """Depth of view 0 (left) or 1 (right) of a stereo scene, (H, W) float64 in [0, 1], larger = farther
    (``f·B / disparity``, normalised; see the module docstring)."""
    with np.load(disparity_file) as archive:
        disparity = archive[archive.files[0]].astype(np.float64)
    if view == 1:
        disparity = _right_view_disparity(disparity)
    return stretch_depth(1.0 / _fill_unknown(disparity))


def _view_files(scene: Scene, view: int, data: Path, crop: Optional[int]) -> Tuple[Path, Optional[Path]]:
    """Clean image and depth map (or None) of one view: the package file, or cached crops of at most ``crop``."""
    source = data / scene.files[view]
    name = Path(scene.files[view]).stem + ".png"
    folder = cache_dir() / ("full" if crop is None else f"crop{crop}")
    clean = source if crop is None else _cached(folder / name, [source],
                                                lambda: _centre_crop(read_image_uint8(source), crop))
    if scene.disparity is None:
        return clean, None
    disparity = data / scene.disparity
    depth = _cached(folder / f"depth_{name}", [disparity], lambda: np.round(
        _centre_crop(disparity_depth(disparity, view), crop) * 65535).astype(np.uint16))
    return clean, depth


def scene_views(split: str, max_size: Optional[int]) -> List[Tuple[str, Path, Optional[Path]]]:
    """(key, clean file, depth file or None) of every view of the split's scenes, sorted by key.

    The key is ``PACKAGE/FILE`` (e.g. ``skimage/chelsea.png``); test views are centre-cropped to at most
    ``max_size`` pixels per side (None = whole images).
    """
    folders = {package: _package_data(package) for package in PACKAGE_DATA}
    if None in folders.values():
        raise DataError("the embedded data set reads the photographs that ship with scikit-image, which is not "
                        'installed; run pip install "cplir[data]" (or make demo)')
    crop = max_size if split == "test" else None
    views = []
    for scene in (s for s in SCENES if s.split == split):
        data = folders[scene.package]
        needed = scene.files + ((scene.disparity,) if scene.disparity else ())
        missing = [name for name in needed if not (data / name).is_file()]
        if missing:
            raise DataError(f"the {scene.package} installation lacks {', '.join(missing)} in {data}; reinstall it "
                            f'(pip install --force-reinstall "cplir[data]")')
        views += [(f"{scene.package}/{name}", *_view_files(scene, view, data, crop))
                  for view, name in enumerate(scene.files)]
    return sorted(views)
