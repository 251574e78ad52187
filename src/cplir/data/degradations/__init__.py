"""Degradation synthesis (docs/datasets.md): pure functions of a clean uint8 RGB image (H, W, 3) and a generator.

Every function returns a uint8 image of the input's shape (except the super-resolution input below); random
parameters are drawn from the generator unless given as keywords, and the same generator state always gives the
same image.

* PromptIR: :func:`add_gaussian_noise_promptir` (truncated to uint8).
* MiOIR seven tasks (``MIOIR_TASKS``), each step rounded to 8 bits, with ``level="id"`` or harder ``"ood"``
  ranges: :func:`bicubic_down_up` (SR ×4), :func:`add_gaussian_blur`, :func:`add_gaussian_noise`,
  :func:`jpeg_compress` (MiOIR's DiffJPEG algorithm, or Pillow), :func:`add_rain`, :func:`add_haze`,
  :func:`low_light_gamma`; ``PARAMETER_DRAWS`` gives the parameters each one draws first (for a manifest).
* Weather: :func:`add_snow` (procedural flakes); CDD-11 classes by :func:`cdd11_composite`.
* Super-resolution input: :func:`bicubic_downscale` (MATLAB ``imresize`` by default, :func:`imresize_matlab`), the
  one degradation whose output is smaller than its input (:func:`size_ratio`).
* Loaders: :func:`degrade` dispatches by name through ``DEGRADATIONS``; each sample draws from its own generator,
  :func:`cplir.seeding.numpy_generator` of a seed and stable keys (relative path, task).
"""

from cplir.data.degradations._filters import gaussian_kernel
from cplir.data.degradations.blur import add_gaussian_blur
from cplir.data.degradations.cdd11 import CDD11_CLASSES, cdd11_composite
from cplir.data.degradations.haze import add_haze, normalise_depth, pseudo_depth, scale_depth, stretch_depth
from cplir.data.degradations.jpeg import diffjpeg, jpeg_compress
from cplir.data.degradations.lowlight import low_light_gamma, low_light_retinex
from cplir.data.degradations.noise import PROMPTIR_SIGMAS, add_gaussian_noise, add_gaussian_noise_promptir
from cplir.data.degradations.rain import add_rain, rain_streaks
from cplir.data.degradations.registry import (DEGRADATION_PARAMS, DEGRADATIONS, MIOIR_TASKS, PARAMETER_DRAWS,
                                              degrade, size_ratio)
from cplir.data.degradations.resize import bicubic_down_up, bicubic_downscale, imresize_matlab
from cplir.data.degradations.snow import add_snow, snow_mask

__all__ = [
    "CDD11_CLASSES",
    "DEGRADATION_PARAMS",
    "DEGRADATIONS",
    "MIOIR_TASKS",
    "PARAMETER_DRAWS",
    "PROMPTIR_SIGMAS",
    "add_gaussian_blur",
    "add_gaussian_noise",
    "add_gaussian_noise_promptir",
    "add_haze",
    "add_rain",
    "add_snow",
    "bicubic_down_up",
    "bicubic_downscale",
    "cdd11_composite",
    "degrade",
    "diffjpeg",
    "gaussian_kernel",
    "imresize_matlab",
    "jpeg_compress",
    "low_light_gamma",
    "low_light_retinex",
    "normalise_depth",
    "pseudo_depth",
    "rain_streaks",
    "scale_depth",
    "size_ratio",
    "snow_mask",
    "stretch_depth",
]
