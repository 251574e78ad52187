"""`cplir data synthesize`: a fixed seven-task set with its manifest; deterministic, resumable, never overwriting."""

import json

import numpy as np
import pytest

from cplir.cli import main
from cplir.data.benchmarks import load_benchmark
from cplir.data.degradations import add_gaussian_blur, degrade, jpeg_compress
from cplir.data.image_io import read_image_uint8, write_png
from cplir.data.synthesize import synthesize
from cplir.errors import DataError
from cplir.seeding import numpy_generator

TASKS = ["sr", "blur", "jpeg", "rain"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:36, 0:44] / 40
    for i, name in enumerate(["a.png", "sub/b.png", "sub/c.png"]):
        img = np.stack([np.sin(5 * xx + i), np.cos(4 * yy - i), xx * yy], -1) * 100 + 120
        write_png(root / name, np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8))
    return root


def files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def manifest(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_manifest_records_every_image_with_its_seed_and_drawn_parameters(source, tmp_path):
    summary = synthesize(source, tmp_path / "set", tasks=TASKS, seed=3)
    assert (summary.written, summary.skipped) == (12, 0)
    entries = manifest(tmp_path / "set")
    assert len(entries) == 12 and {e["task"] for e in entries} == set(TASKS)
    settings = json.loads((tmp_path / "set" / "synthesis.json").read_text())
    assert settings["seed"] == 3 and settings["jpeg_codec"] == "diffjpeg" and settings["tasks"] == TASKS
    for entry in entries:
        clean = read_image_uint8(source / entry["clean"])
        out = read_image_uint8(tmp_path / "set" / entry["degraded"])
        assert entry["degraded"] == f"{entry['task']}/{entry['clean'][:-4]}.png" and out.shape == clean.shape
        # the image is the on-the-fly recipe with this image's generator, so offline and online data agree
        params = {k: v for k, v in entry["params"].items() if k in ("level", "mode", "codec")}
        online = degrade(clean, entry["task"], numpy_generator(3, entry["clean"], entry["task"]), **params)
        np.testing.assert_array_equal(out, online)
        # the recorded parameters are the ones used: fixing them reproduces the image with any generator
        p = entry["params"]
        if entry["task"] == "jpeg":
            assert 30 <= p["quality"] <= 70 and p["codec"] == "diffjpeg"
            np.testing.assert_array_equal(out, jpeg_compress(clean, np.random.default_rng(99), quality=p["quality"]))
        if entry["task"] == "blur":
            fixed = add_gaussian_blur(clean, np.random.default_rng(99), kernel_size=p["kernel_size"], sigma=p["sigma"])
            np.testing.assert_array_equal(out, fixed)
        if entry["task"] == "rain":
            assert set(p) == {"level", "density", "width", "length", "angle"} and 50 <= p["density"] <= 99
        assert int(entry["seed"]) > 0


def test_synthesis_is_deterministic_and_resumable_without_overwriting(source, tmp_path):
    synthesize(source, tmp_path / "one", tasks=TASKS, seed=3)
    synthesize(source, tmp_path / "two", tasks=TASKS, seed=3)
    reference = files(tmp_path / "one")
    assert files(tmp_path / "two") == reference
    assert sorted(map(json.dumps, manifest(tmp_path / "two"))) == sorted(map(json.dumps, manifest(tmp_path / "one")))
    # an interrupted run: one image missing, the manifest's last line cut short
    out = tmp_path / "two"
    (out / "rain/sub/b.png").unlink()
    text = (out / "manifest.jsonl").read_text()
    (out / "manifest.jsonl").write_text(text[:-20])
    kept = out / "sr/a.png"
    before = kept.stat().st_mtime_ns
    summary = synthesize(source, out, tasks=TASKS, seed=3)
    assert summary.written == 1 and summary.skipped == 11
    assert files(out) == reference and kept.stat().st_mtime_ns == before
    assert len({(e["task"], e["clean"]) for e in manifest(out)}) == 12
    assert synthesize(source, out, tasks=TASKS, seed=3).written == 0
    with pytest.raises(DataError, match="seed differ"):
        synthesize(source, out, tasks=TASKS, seed=4)
    assert files(out) == reference


def test_the_synthesised_set_is_a_benchmark(source, tmp_path):
    out = tmp_path / "set"
    synthesize(source, out, tasks=["noise", "lowlight"], seed=0)
    records = load_benchmark("mioir_synthesised", out, "train")
    assert {task: len(r) for task, r in records.items()} == {"noise": 3, "lowlight": 3}
    first = records["noise"][0]
    assert first.degraded == out / "noise/a.png" and first.clean == source / "a.png" and first.synth is None
    assert list(load_benchmark("mioir_synthesised", out, "test", tasks=["lowlight"])) == ["lowlight"]
    moved = tmp_path / "moved"
    moved.symlink_to(source)
    assert load_benchmark("mioir_synthesised", out, clean_root=str(moved))["noise"][0].clean == moved / "a.png"
    (out / "noise/sub/b.png").unlink()
    with pytest.raises(DataError, match="noise/sub/b.png"):
        load_benchmark("mioir_synthesised", out)
    with pytest.raises(DataError, match="holds no synthesised set"):
        load_benchmark("mioir_synthesised", source)


def test_cli_synthesize(source, tmp_path, capsys):
    assert main(["data", "synthesize", str(source), str(tmp_path / "cli"), "--tasks", "jpeg", "--seed", "5"]) == 0
    assert "wrote 3 image(s), 0 already there" in capsys.readouterr().out
    assert main(["data", "synthesize", str(source), str(tmp_path / "cli"), "--tasks", "jpeg", "--seed", "6"]) == 2
    assert "never overwritten" in capsys.readouterr().err
