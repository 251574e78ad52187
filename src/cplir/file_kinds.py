"""What a file really is, told by its first bytes rather than its name.

A file that cannot be read as an image or a checkpoint is named for what it is ("a NumPy .npy array", "a text
file", "a safetensors file") instead of being called damaged; checkpoint loading also picks its reader by content,
so a safetensors file named ``.pth`` still loads.
"""

import os
import struct
from pathlib import Path
from typing import Union

HEAD_BYTES = 4096

# (leading bytes, what the file is), checked in order.
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"RIFF", "a RIFF file (WebP image, WAV audio)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x89HDF", "an HDF5 file (h5py, Keras)"),
    (b"%PDF", "a PDF document"),
    (b"version https://git-lfs", "a Git LFS pointer (the real file was never fetched: run git lfs pull)"),
)
PYTORCH_ZIP = "a PyTorch checkpoint (zip)"
PICKLE = "a Python pickle (a legacy PyTorch checkpoint)"
SAFETENSORS = "a safetensors file"


def _is_safetensors(head: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length (at most 100 MB), then a JSON object."""
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 0 < length <= 100_000_000 and head[8:9] == b"{"


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:  # a multi-byte character cut at the end of the sample is still text
        return err.start >= len(head) - 3
    return True


def file_kind(path: Union[str, os.PathLike]) -> str:
    """A short description of what ``path`` holds, e.g. ``"a PNG image"``, ``"a text file"``, ``"an empty
    file"``, ``"unrecognised binary data"``."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    if not head:
        return "an empty file"
    for signature, kind in SIGNATURES:
        if head.startswith(signature):
            return kind
    if head.startswith(b"PK\x03\x04"):
        return PYTORCH_ZIP if b"data.pkl" in head else "a zip archive"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return PICKLE
    if _is_safetensors(head):
        return SAFETENSORS
    if _is_text(head):
        return "an HTML page (a download that returned a web page?)" if head.lstrip()[:1] == b"<" else "a text file"
    return "unrecognised binary data"
