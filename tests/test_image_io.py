"""Reading every supported kind of image file, writing PNGs, and clear errors for broken files."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from cplir.data.image_io import (
    IMAGE_EXTENSIONS,
    is_image_file,
    read_image,
    read_image_uint8,
    to_image,
    to_tensor,
    write_png,
)
from cplir.errors import ImageReadError


@pytest.fixture
def rgb():
    """(12, 17, 3) uint8 with every value distinct enough to catch channel or axis mix-ups."""
    return np.random.default_rng(0).integers(0, 256, (12, 17, 3), dtype=np.uint8)


def check_image(image, height, width):
    assert image.shape == (height, width, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_rgb_formats_exact(tmp_path, rgb, suffix):
    path = tmp_path / f"image{suffix}"
    Image.fromarray(rgb).save(path)
    image = read_image(path)
    check_image(image, 12, 17)
    np.testing.assert_array_equal(image, rgb.astype(np.float32) / 255)
    np.testing.assert_array_equal(read_image_uint8(path), rgb)


def test_greyscale_png_replicated(tmp_path, rgb):
    grey = rgb[..., 0]
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    image = read_image(tmp_path / "grey.png")
    check_image(image, 12, 17)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], grey / np.float32(255))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_greyscale_keeps_precision(tmp_path, suffix):
    values = (np.arange(12 * 17, dtype=np.uint32).reshape(12, 17) * 321 + 7).astype(np.uint16)
    path = tmp_path / f"grey16{suffix}"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I;16")
    image = read_image(path)
    check_image(image, 12, 17)
    np.testing.assert_allclose(image[..., 1], values / 65535.0, atol=0.5 / 65535)
    assert len(np.unique(image)) == values.size  # 8-bit rounding would merge neighbouring values


def test_rgba_png_drops_alpha(tmp_path, rgb):
    alpha = np.zeros((12, 17, 1), dtype=np.uint8)  # fully transparent: colours must survive unchanged
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), mode="RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "rgba.png"), rgb)


def test_palette_png_converted_to_rgb(tmp_path):
    palette_image = Image.new("P", (5, 4))
    palette_image.putpalette([255, 0, 0, 0, 128, 255] + [0] * (254 * 3))
    palette_image.putdata([0, 1] * 10)
    palette_image.save(tmp_path / "palette.png", transparency=1)
    image = read_image_uint8(tmp_path / "palette.png")
    assert image.shape == (4, 5, 3)
    np.testing.assert_array_equal(image[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(image[0, 1], [0, 128, 255])


def smooth_rgb(height=48, width=64):
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 2 % 256], axis=-1).astype(np.uint8)


def test_jpeg_close_to_source(tmp_path):
    source = smooth_rgb()
    Image.fromarray(source).save(tmp_path / "photo.JPG", quality=95)
    image = read_image(tmp_path / "photo.JPG")
    check_image(image, 48, 64)
    assert np.abs(image - source / 255.0).mean() < 0.02


def test_cmyk_jpeg_converted_to_rgb(tmp_path):
    source = smooth_rgb()
    Image.fromarray(source).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    image = read_image(tmp_path / "cmyk.jpg")
    check_image(image, 48, 64)
    assert np.abs(image - source / 255.0).mean() < 0.02


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_48bit_png_read_at_8bit_precision(tmp_path):
    # Documented limitation: Pillow keeps the high byte of each 16-bit colour sample.
    samples = np.random.default_rng(1).integers(0, 65536, (6, 7, 3)).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in samples)
    header = struct.pack(">IIBBBBB", 7, 6, 16, 2, 0, 0, 0)  # width, height, 16 bits, colour type RGB
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw))
    (tmp_path / "rgb48.png").write_bytes(data + png_chunk(b"IEND", b""))
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "rgb48.png"), samples >> 8)


def test_exif_orientation_applied(tmp_path):
    stored = smooth_rgb(6, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(stored).save(tmp_path / "phone.png", exif=exif)
    image = read_image_uint8(tmp_path / "phone.png")
    np.testing.assert_array_equal(image, np.rot90(stored, k=-1))


def test_write_png_round_trip(tmp_path):
    image = np.random.default_rng(2).random((9, 13, 3)).astype(np.float32)
    path = tmp_path / "new" / "nested" / "out.png"
    write_png(path, image)
    np.testing.assert_allclose(read_image(path), image, atol=0.5 / 255 + 1e-7)
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.png"]  # no temporary file left behind


def test_write_png_inputs(tmp_path, rgb):
    write_png(tmp_path / "uint8.png", rgb)
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "uint8.png"), rgb)

    grey = np.linspace(-0.5, 1.5, 12 * 17).reshape(12, 17)  # out of range: clipped
    write_png(tmp_path / "grey.png", grey)
    expected = np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "grey.png"), np.repeat(expected[..., None], 3, 2))

    tensor = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    write_png(tmp_path / "chw.png", tensor)
    write_png(tmp_path / "bchw.png", tensor[None].requires_grad_())
    for name in ("chw.png", "bchw.png"):
        np.testing.assert_array_equal(read_image_uint8(tmp_path / name), rgb)

    write_png(tmp_path / "uint8.png", 255 - rgb)  # replaces an existing file
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "uint8.png"), 255 - rgb)


def test_write_png_rejects_bad_input(tmp_path, rgb):
    with pytest.raises(ValueError, match=".png extension"):
        write_png(tmp_path / "out.jpg", rgb)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        write_png(tmp_path / "out.png", rgb[..., :2])
    with pytest.raises(ValueError, match="dtype int64"):
        write_png(tmp_path / "out.png", rgb.astype(np.int64))


def test_tensor_helpers(rgb):
    tensor = to_tensor(rgb)
    assert tensor.shape == (1, 3, 12, 17) and tensor.dtype == torch.float32
    assert tensor[0, 2, 3, 4].item() == pytest.approx(rgb[3, 4, 2] / 255)
    image = to_image(tensor)
    assert image.shape == (12, 17, 3) and image.dtype == np.float32
    np.testing.assert_array_equal(to_tensor(image), tensor)
    np.testing.assert_array_equal(to_image(tensor[0]), image)


def first_half(image_format):
    """The first half of a 64×64 noise image encoded as ``image_format``."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, image_format)
    return buffer.getvalue()[: buffer.tell() // 2]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("half.png", first_half("PNG"), "damaged or truncated"),
        ("half.jpg", first_half("JPEG"), "damaged or truncated"),
        ("empty.png", b"", "empty"),
        ("notes.png", b"this is a text file, not an image\n", "not an image format"),
    ],
)
def test_broken_files_raise_image_read_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message) as error:
        read_image(path)
    assert str(path) in str(error.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist") as error:
        read_image(tmp_path / "missing.png")
    assert "missing.png" in str(error.value)
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image_uint8(tmp_path)


def test_truncated_images_are_not_tolerated():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_is_image_file():
    assert IMAGE_EXTENSIONS == (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
    assert all(is_image_file(f"a/b{ext.upper()}") for ext in IMAGE_EXTENSIONS)
    assert is_image_file("x.JpEg") and not is_image_file("x.txt") and not is_image_file("png")


def test_uint8_reader_equals_rounded_float_reader_for_every_kind(tmp_path, rgb):
    """read_image_uint8 takes a direct path for 8-bit colour modes; it must agree with read_image everywhere."""
    source = smooth_rgb()
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "grey.png")
    Image.fromarray(source).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    Image.fromarray(source).save(tmp_path / "photo.jpg", quality=90)
    Image.fromarray((np.arange(48 * 64).reshape(48, 64) * 20).astype(np.uint16)).save(tmp_path / "grey16.png")
    for path in sorted(tmp_path.iterdir()):
        expected = np.round(read_image(path) * 255).astype(np.uint8)
        np.testing.assert_array_equal(read_image_uint8(path), expected, err_msg=path.name)
