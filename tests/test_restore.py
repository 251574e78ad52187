"""`cplir restore` end to end on a tiny model file, photo layouts (grey, alpha, 16-bit, palette, EXIF), bad inputs,
never overwriting, and the model-file side: export formats and which model a file is read as."""

import csv
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from cplir.cli import main
from cplir.data.photo_io import photo_from_array, read_photo, write_photo, write_png16
from cplir.engine.checkpoint import atomic_save, export_path
from cplir.errors import CheckpointError, ImageReadError, ImageWriteError
from cplir.models import build_model, load_model, load_weights, save_model

TASKS = ("derain", "dehaze", "denoise")


@pytest.fixture
def model_file(tmp_path, tiny_kwargs):
    torch.manual_seed(0)
    model = build_model("cplir", **tiny_kwargs, num_prompts=3).eval()
    calibration = {block: {task: np.eye(3)[i].tolist() for i, task in enumerate(TASKS)}
                   for block in ("prompt1", "prompt2", "prompt3")}
    return save_model(model, tmp_path / "tiny.safetensors", calibration=calibration)


def _png(width: int, height: int, bit_depth: int, colour_type: int, data: bytes = b"") -> bytes:
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(data)) if data else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.fixture
def photos(tmp_path):
    """A folder of the layouts users have, plus broken files; returns (folder, {name: what it is})."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(_rng(0).integers(0, 256, (14, 20, 3), dtype=np.uint8)).save(folder / "colour.jpg", quality=90)
    Image.fromarray(_rng(1).integers(0, 256, (9, 11), dtype=np.uint8)).save(folder / "grey.png")
    Image.fromarray(_rng(2).integers(0, 256, (10, 12, 4), dtype=np.uint8)).save(folder / "alpha.png")
    Image.fromarray(_rng(3).integers(0, 65536, (8, 10), dtype=np.uint16)).save(folder / "grey16.png")
    with open(folder / "colour16.png", "wb") as handle:
        write_png16(handle, _rng(4).integers(0, 65536, (7, 9, 3), dtype=np.uint16))
    Image.fromarray(_rng(5).integers(0, 256, (8, 8, 3), dtype=np.uint8)).convert("P").save(folder / "palette.png")
    Image.fromarray(np.full((1, 1, 3), 128, dtype=np.uint8)).save(folder / "one.png")
    Image.fromarray(_rng(6).integers(0, 256, (7, 13, 3), dtype=np.uint8)).save(folder / "odd.bmp")
    good_png = io.BytesIO()
    Image.fromarray(_rng(7).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(good_png, format="PNG")
    (folder / "truncated.png").write_bytes(good_png.getvalue()[: len(good_png.getvalue()) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "bomb.png").write_bytes(_png(20000, 20000, 8, 2))  # 400 megapixels claimed, nothing inside
    return folder


def _run(args, capsys):
    code = main(["restore", *map(str, args), "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_restore_a_folder_of_every_layout_and_skip_the_broken_files(photos, model_file, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    out = tmp_path / "restored"
    code, stdout, _ = _run([photos, notes, "--model", model_file, "--out", out], capsys)
    assert code == 1
    lines = stdout.strip().splitlines()
    assert lines[-1] == "restored 8, skipped 4"
    skipped = [line for line in lines if line.startswith("skipped")]
    assert len(skipped) == 4
    for name, reason in (("truncated.png", "damaged or truncated"), ("empty.png", "empty"),
                         ("bomb.png", "decompression bomb"), ("notes.txt", "not an image format")):
        assert any(name in line and reason in line for line in skipped), name

    assert Image.open(out / "grey.png").mode == "L"
    assert Image.open(out / "grey16.png").mode == "I;16"
    alpha = Image.open(out / "alpha.png")
    assert alpha.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(alpha)[..., 3], np.asarray(Image.open(photos / "alpha.png"))[..., 3])
    colour16 = read_photo(out / "colour16.png")
    assert colour16.bits == 16 and not colour16.grey and (out / "colour16.png").read_bytes()[24] == 16
    assert Image.open(out / "palette.png").mode == "RGB"
    assert Image.open(out / "one.png").size == (1, 1)
    assert Image.open(out / "odd.png").size == (13, 7)
    assert Image.open(out / "colour.png").size == (20, 14)

    # the model file carries a calibration: one detection line per image and routing.csv
    assert sum(": derain " in line or ": dehaze " in line or ": denoise " in line for line in lines) == 8
    with open(out / "routing.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 * 3 and set(rows[0]) == {"image", "block", "component", "probability", "task",
                                                   "task_probability"}
    assert {row["task"] for row in rows} <= set(TASKS)


def test_an_existing_output_is_kept_unless_overwrite(photos, model_file, tmp_path, capsys):
    out = tmp_path / "restored"
    out.mkdir()
    (out / "grey.png").write_bytes(b"mine")
    code, stdout, _ = _run([photos / "grey.png", photos / "one.png", "--model", model_file, "--out", out], capsys)
    assert code == 0 and (out / "grey.png").read_bytes() == b"mine"
    assert "kept" in stdout and stdout.strip().splitlines()[-1].startswith("restored 1, skipped 0, kept 1")
    code, stdout, _ = _run([photos / "grey.png", "--model", model_file, "--out", out, "--overwrite"], capsys)
    assert code == 0 and Image.open(out / "grey.png").mode == "L"
    assert (out / "routing.csv").exists() and not (out / "routing-2.csv").exists()  # --overwrite replaces it too


def test_the_output_folder_may_not_be_an_input_folder(photos, model_file, capsys):
    code, _, err = _run([photos, "--model", model_file, "--out", photos], capsys)
    assert code == 2 and "input folder" in err
    code, _, err = _run([photos, "--recursive", "--model", model_file, "--out", photos / "restored"], capsys)
    assert code == 2 and "inside an input folder" in err
    code, _, err = _run([photos / "one.png", "--model", model_file, "--out", photos], capsys)
    assert code == 2 and "input folder" in err
    assert not (photos / "restored").exists()


def test_folders_are_mirrored_recursively_and_globs_expand(tmp_path, model_file, capsys):
    root = tmp_path / "album"
    (root / "2024" / "june").mkdir(parents=True)
    for path in (root / "a.png", root / "2024" / "b.jpg", root / "2024" / "june" / "c.png"):
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(path)
    code, stdout, _ = _run([root, "--model", model_file, "--out", tmp_path / "flat"], capsys)
    assert code == 0 and sorted(p.name for p in (tmp_path / "flat").glob("*.png")) == ["a.png"]
    code, _, _ = _run([root, "--recursive", "--model", model_file, "--out", tmp_path / "deep", "--ext", "jpg"],
                      capsys)
    assert code == 0
    assert {str(p.relative_to(tmp_path / "deep")) for p in (tmp_path / "deep").rglob("*.jpg")} == {
        "a.jpg", "2024/b.jpg", "2024/june/c.jpg"}
    code, _, _ = _run([f"{root}/**/*.png", "--recursive", "--model", model_file, "--out", tmp_path / "glob"], capsys)
    assert code == 0
    assert {str(p.relative_to(tmp_path / "glob")) for p in (tmp_path / "glob").rglob("*.png")} == {
        "a.png", "2024/june/c.png"}
    code, stdout, _ = _run([f"{root}/*.tif", "--model", model_file, "--out", tmp_path / "none"], capsys)
    assert code == 1 and "no file matches" in stdout


def test_two_inputs_with_one_output_name_are_not_both_written(tmp_path, model_file, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x.png", "x.jpg"):
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(folder / name)
    code, stdout, _ = _run([folder, "--model", model_file, "--out", tmp_path / "out"], capsys)
    assert code == 1 and "also the output of" in stdout and stdout.strip().endswith("restored 1, skipped 1")


def test_tiles_ensemble_and_bf16_from_the_command_line(photos, model_file, tmp_path, capsys):
    code, _, _ = _run([photos / "colour.jpg", "--model", model_file, "--out", tmp_path / "o", "--tile", "16",
                       "--tile-overlap", "8", "--precision", "bf16", "--device", "cpu"], capsys)
    assert code == 0 and Image.open(tmp_path / "o" / "colour.png").size == (20, 14)
    code, _, _ = _run([photos / "one.png", "--model", model_file, "--out", tmp_path / "o", "--ensemble"], capsys)
    assert code == 0 and Image.open(tmp_path / "o" / "one.png").size == (1, 1)
    code, _, err = _run([photos / "colour.jpg", "--model", model_file, "--out", tmp_path / "o", "--tile", "big"],
                        capsys)
    assert code == 2 and "--tile" in err


def test_exif_orientation_is_applied(tmp_path, model_file, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(np.zeros((8, 16, 3), dtype=np.uint8)).save(tmp_path / "phone.jpg", exif=exif)
    code, _, _ = _run([tmp_path / "phone.jpg", "--model", model_file, "--out", tmp_path / "o"], capsys)
    assert code == 0 and Image.open(tmp_path / "o" / "phone.png").size == (8, 16)


# --- photo layouts ------------------------------------------------------------------------------------------------
def test_sixteen_bit_colour_png_round_trips_exactly(tmp_path):
    samples = _rng(8).integers(0, 65536, (5, 6, 4), dtype=np.uint16)
    photo = photo_from_array(samples)
    assert photo.bits == 16 and photo.alpha is not None
    path = write_photo(tmp_path / "x.png", photo)
    back = read_photo(path)
    np.testing.assert_array_equal(back.to_array(), samples)
    assert np.asarray(Image.open(path)).shape == (5, 6, 4)  # Pillow reads the file too (its high bytes)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), (samples >> 8).astype(np.uint8))


def test_grey_outputs_are_the_mean_of_the_restored_channels():
    photo = photo_from_array(np.array([[0, 255]], dtype=np.uint8))
    restored = photo.with_colour(np.array([[[0.0, 0.3, 0.6], [1.0, 1.0, 0.4]]], dtype=np.float32))
    np.testing.assert_array_equal(restored.to_array(), np.array([[round(0.3 * 255), round(0.8 * 255)]]))


def test_alpha_follows_a_super_resolved_size():
    photo = photo_from_array(np.concatenate([np.zeros((4, 4, 3)), np.ones((4, 4, 1))], axis=2).astype(np.float32))
    restored = photo.with_colour(np.zeros((8, 8, 3), dtype=np.float32))
    assert restored.to_array().shape == (8, 8, 4) and np.allclose(restored.to_array()[..., 3], 1.0)


def test_writing_refuses_what_it_cannot_keep(tmp_path):
    rgba = photo_from_array(np.zeros((4, 4, 4), dtype=np.uint8))
    with pytest.raises(ImageWriteError, match="alpha"):
        write_photo(tmp_path / "x.jpg", rgba)
    path = write_photo(tmp_path / "x.png", rgba)
    with pytest.raises(ImageWriteError, match="already exists"):
        write_photo(path, rgba)
    with pytest.raises(ImageReadError, match="uint8, uint16 or float"):
        photo_from_array(np.zeros((4, 4), dtype=np.int64))


# --- model files ----------------------------------------------------------------------------------------------------
def test_export_chooses_the_format_from_the_flag_or_the_suffix(tmp_path):
    assert export_path(tmp_path / "m.onnx") == ("onnx", tmp_path / "m.onnx")
    assert export_path(tmp_path / "m", "safetensors") == ("safetensors", tmp_path / "m.safetensors")
    assert export_path(tmp_path / "m.pth", "pth") == ("pth", tmp_path / "m.pth")
    with pytest.raises(CheckpointError, match="suffix"):
        export_path(tmp_path / "m.bin")
    with pytest.raises(CheckpointError, match="does not match"):
        export_path(tmp_path / "m.onnx", "pth")
    with pytest.raises(CheckpointError, match="--format"):
        export_path(tmp_path / "m")


def test_a_published_file_says_which_model_it_was_read_as(tmp_path, tiny_kwargs, capsys):
    model = build_model("promptir", **tiny_kwargs)
    atomic_save({"state_dict": {f"net.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "p.ckpt")
    loaded = load_model(tmp_path / "p.ckpt")
    assert loaded.spec["name"] == "promptir" and "--arch cplir" in loaded.load_note
    assert "as asked" in load_model(tmp_path / "p.ckpt", name="cplir").load_note
    assert main(["export", "--checkpoint", str(tmp_path / "p.ckpt"), "--out", str(tmp_path / "p.safetensors")]) == 0
    assert "read as 'promptir'" in capsys.readouterr().out
    exported = load_model(tmp_path / "p.safetensors")
    assert exported.spec["name"] == "promptir" and exported.load_note is None  # the kind is recorded now
    assert main(["export", "--checkpoint", str(tmp_path / "p.ckpt"), "--out", str(tmp_path / "p.bin")]) == 2


def test_dense_weights_are_not_loaded_silently_into_a_sparse_model(tmp_path, tiny_kwargs):
    dense = save_model(build_model("promptir", **tiny_kwargs), tmp_path / "dense.safetensors")
    sparse = build_model("cplir", **tiny_kwargs)
    with pytest.raises(CheckpointError, match="holds a 'promptir' model, not the 'cplir'"):
        load_weights(sparse, dense)
    with pytest.raises(CheckpointError, match="not 'cplir'"):
        load_model(dense, name="cplir")
    load_weights(build_model("promptir", **tiny_kwargs), dense)


def test_cplir_test_says_when_published_weights_look_like_another_model(tmp_path, tiny_kwargs, capsys):
    from cplir.config import Config, ModelConfig
    from cplir.engine.testing import load_for_inference

    model = build_model("promptir", **tiny_kwargs)
    atomic_save({"state_dict": {f"net.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "p.ckpt")
    load_for_inference(Config(model=ModelConfig("cplir", dict(tiny_kwargs))), tmp_path / "p.ckpt")
    assert "read as 'cplir' as asked" in capsys.readouterr().out
    load_for_inference(Config(model=ModelConfig("promptir", dict(tiny_kwargs))), tmp_path / "p.ckpt")
    assert capsys.readouterr().out == ""
