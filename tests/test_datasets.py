"""Evaluation set, training mix and loaders: determinism, alignment, augmentation, replication, sharding."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cplir.data.benchmarks import PROMPTIR_REPEATS, load_benchmark
from cplir.data.datasets import PairedDataset, TrainingMix, build_eval_loader, build_train_loader, dihedral
from cplir.data.records import PairRecord
from cplir.errors import DataError, ImageReadError
from test_benchmarks import build, promptir_files

SHIFT = 40  # degraded = clean + SHIFT in the textured pairs


def textured_pairs(folder: Path, count: int, size=(40, 32), task="derain"):
    """``count`` PNG pairs of random texture (values 0..200), degraded = clean + SHIFT exactly."""
    rng = np.random.default_rng(0)
    records = []
    for n in range(count):
        clean = rng.integers(0, 201, (size[1], size[0], 3), dtype=np.uint8)
        paths = {}
        for name, image in (("gt", clean), ("lq", clean + SHIFT)):
            paths[name] = folder / name / f"{task}{n}.png"
            paths[name].parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(paths[name])
        records.append(PairRecord(task=task, clean=paths["gt"], degraded=paths["lq"], key=f"lq/{task}{n}.png"))
    return records


def test_synthetic_test_noise_does_not_depend_on_file_order(tmp_path, monkeypatch):
    first = PairedDataset(load_benchmark("promptir_three_task", build(tmp_path / "a", promptir_files()), "test"))
    iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: reversed(list(iterdir(self))))
    root = build(tmp_path / "b", promptir_files(), reverse=True)
    second = PairedDataset(load_benchmark("promptir_three_task", root, "test"))
    assert len(first) == len(second) == 10
    for a, b in zip(first, second):
        assert (a["key"], a["task"]) == (b["key"], b["task"])
        assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"])
    samples = {(s["task"], s["key"]): s for s in first}
    noise = {t: (samples[(t, "test/denoise/bsd68/3096.png")]["lq"] - samples[(t, "test/denoise/bsd68/3096.png")]["gt"])
             for t in ("denoise_15", "denoise_50")}
    assert 0 < noise["denoise_15"].abs().mean() < noise["denoise_50"].abs().mean()  # a real, σ-dependent noise
    assert PairedDataset(first.records, seed=1)[0]["lq"].ne(first[0]["lq"]).any()


def test_paired_dataset_reads_file_pairs_with_task_ids(tmp_path):
    records = {"derain": textured_pairs(tmp_path, 2), "dehaze": textured_pairs(tmp_path, 1, task="dehaze")}
    dataset = PairedDataset(records)
    sample = dataset[2]
    assert sample["lq"].shape == (3, 32, 40) and sample["lq"].dtype == torch.float32
    assert (sample["task"], sample["task_id"], sample["key"]) == ("dehaze", 1, "lq/dehaze0.png")
    assert torch.allclose(sample["lq"] - sample["gt"], torch.full_like(sample["gt"], SHIFT / 255), atol=1e-6)
    assert PairedDataset(records)[0]["gt"].shape == (3, 32, 40)


def test_promptir_style_crop_to_a_multiple_happens_before_synthesis(tmp_path):
    """PromptIR's test sets crop the clean image to a multiple of 16, then add the noise."""
    clean = np.random.default_rng(1).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    Image.fromarray(clean).save(tmp_path / "c.png")
    record = PairRecord(task="denoise_25", clean=tmp_path / "c.png", synth="noise_promptir", params={"sigma": 25},
                        key="c.png")
    sample = PairedDataset([record], multiple_of=16)[0]
    assert sample["gt"].shape == (3, 32, 32)  # rows 2..34, columns 6..38: offsets rem // 2
    torch.testing.assert_close(sample["gt"], torch.from_numpy(clean[2:34, 6:38]).permute(2, 0, 1).float() / 255)
    from cplir.data.degradations import degrade
    from cplir.seeding import numpy_generator
    expected = degrade(clean[2:34, 6:38], "noise_promptir", numpy_generator(0, "c.png", "denoise_25"), sigma=25)
    torch.testing.assert_close(sample["lq"], torch.from_numpy(expected).permute(2, 0, 1).float() / 255)
    records = textured_pairs(tmp_path, 1)  # file pairs are cropped alike, still aligned
    pair = PairedDataset(records, multiple_of=16)[0]
    assert pair["lq"].shape == (3, 32, 32)
    assert torch.allclose(pair["lq"] - pair["gt"], torch.full_like(pair["gt"], SHIFT / 255), atol=1e-6)


def test_training_crops_keep_the_scene_depth_of_their_haze(tmp_path):
    """Haze is pixel-wise given β, A and the depth: a training crop must equal the crop of the whole hazy image
    (the depth is the scene's, cropped, not re-normalised over the crop)."""
    from cplir.data.degradations import degrade, pseudo_depth

    yy, xx = np.mgrid[0:48, 0:40]
    clean = np.stack([yy * 4, xx * 5, (yy + xx) * 2], -1).clip(0, 255).astype(np.uint8)
    Image.fromarray(clean).save(tmp_path / "scene.png")
    record = PairRecord(task="dehaze", clean=tmp_path / "scene.png", synth="haze", key="scene.png")
    mix = TrainingMix({"dehaze": [record]}, repeats={"dehaze": 1}, crop_size=16, augment=False, seed=3)
    sample = mix[(0, 0)]
    rng = np.random.default_rng([3, 0, 0])  # the sample's generator: the window first, then β and A
    window = mix._random_window(clean.shape, record, rng)
    whole = degrade(clean, "haze", rng, depth=pseudo_depth(clean))
    torch.testing.assert_close(sample["lq"], torch.from_numpy(whole[window]).permute(2, 0, 1).float() / 255)


def test_training_mix_replicates_tasks_and_validates_repeats(tmp_path):
    records = load_benchmark("promptir_three_task", build(tmp_path, promptir_files()), "train")
    mix = TrainingMix(records, PROMPTIR_REPEATS, crop_size=8)
    assert mix.samples_per_task == {"denoise_15": 12, "denoise_25": 12, "denoise_50": 12, "derain": 360,
                                    "dehaze": 3}
    assert len(mix) == 399
    labels = [mix[i]["task"] for i in (0, 12, 36, 37, 396)]
    assert labels == ["denoise_15", "denoise_25", "derain", "derain", "dehaze"]
    assert [mix[i]["task_id"] for i in (0, 396)] == [0, 4]
    assert len(TrainingMix(records, {"derain": 2}, crop_size=8)) == 12 + 6 + 3
    with pytest.raises(DataError, match=r"unknown task\(s\) \['deblur'\]"):
        TrainingMix(records, {"deblur": 5})
    with pytest.raises(DataError, match="repeats\\['derain'\\]"):
        TrainingMix(records, {"derain": 0})
    with pytest.raises(DataError, match="none for \\['dehaze'\\]"):
        TrainingMix({**records, "dehaze": []}, {})


def test_crops_stay_aligned_through_every_flip_and_rotation(tmp_path):
    mix = TrainingMix({"derain": textured_pairs(tmp_path, 2)}, {"derain": 8}, crop_size=16)
    for index in range(len(mix)):
        sample = mix[(3, index)]
        assert sample["lq"].shape == sample["gt"].shape == (3, 16, 16)
        assert torch.allclose(sample["lq"] - sample["gt"], torch.full_like(sample["gt"], SHIFT / 255), atol=1e-6)


def test_all_eight_dihedral_transforms_are_drawn(tmp_path):
    clean = np.arange(16 * 16 * 3, dtype=np.uint32).reshape(16, 16, 3) % 199
    Image.fromarray(clean.astype(np.uint8)).save(tmp_path / "gt.png")
    Image.fromarray((clean + SHIFT).astype(np.uint8)).save(tmp_path / "lq.png")
    record = PairRecord("x", clean=tmp_path / "gt.png", degraded=tmp_path / "lq.png", key="lq.png")
    mix = TrainingMix({"x": [record]}, {"x": 64}, crop_size=16)  # the crop is the whole image
    transforms = [np.asarray(dihedral(clean, k), np.float32) / 255 for k in range(8)]
    assert len({t.tobytes() for t in transforms}) == 8
    drawn = set()
    for index in range(len(mix)):
        gt = mix[index]["gt"].permute(1, 2, 0).numpy()
        drawn.add(next(k for k, t in enumerate(transforms) if np.allclose(gt, t)))
    assert drawn == set(range(8))


def test_samples_are_reproducible_per_seed_epoch_index(tmp_path):
    records = {"derain": textured_pairs(tmp_path, 2)}
    records["denoise_25"] = [PairRecord("denoise_25", clean=records["derain"][0].clean, synth="noise_promptir",
                                        params={"sigma": 25}, key="gt/derain0.png")]
    mix, again = TrainingMix(records, {}, crop_size=16, seed=5), TrainingMix(records, {}, crop_size=16, seed=5)
    again.set_epoch(2)
    for index in range(len(mix)):
        assert torch.equal(mix[(2, index)]["lq"], again[index]["lq"])
        assert not torch.equal(mix[(2, index)]["lq"], mix[(3, index)]["lq"])
    noisy = mix[(2, 2)]
    assert noisy["task"] == "denoise_25" and noisy["lq"].shape == (3, 16, 16)
    assert 0.03 < (noisy["lq"] - noisy["gt"]).abs().mean() < 0.12  # σ=25/255 noise on the crop


def test_small_or_unreadable_images_raise_naming_the_file(tmp_path):
    records = textured_pairs(tmp_path, 1)
    with pytest.raises(DataError, match=r"gt/derain0.png \(40x32\) is smaller than the training crop 48x48"):
        TrainingMix({"derain": records}, {}, crop_size=48)[0]
    records[0].degraded.write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="lq/derain0.png"):
        PairedDataset(records)[0]


def test_loader_batches_do_not_depend_on_worker_count(tmp_path):
    mix = TrainingMix({"derain": textured_pairs(tmp_path, 2)}, {"derain": 8}, crop_size=8, seed=1)

    def batches(loader, epoch):
        loader.sampler.set_epoch(epoch)
        return [(b["key"], b["lq"]) for b in loader]

    serial = build_train_loader(mix, batch_size=4, num_workers=0, seed=7)
    parallel = build_train_loader(mix, batch_size=4, num_workers=2, seed=7)
    for epoch in (0, 1):  # the persistent workers must follow the epoch too
        expected, got = batches(serial, epoch), batches(parallel, epoch)
        assert len(got) == 4
        for (keys_a, lq_a), (keys_b, lq_b) in zip(expected, got):
            assert keys_a == keys_b and torch.equal(lq_a, lq_b)
    first = [mix[(1, int(i))]["lq"] for i in list(parallel.sampler.base)[:4]]  # sample = f(seed, epoch 1, index)
    assert torch.equal(got[0][1], torch.stack(first))
    assert batches(serial, 0)[0][1].ne(batches(serial, 1)[0][1]).any()
    with pytest.raises(DataError, match="fewer than one batch"):
        build_train_loader(mix, batch_size=32)


def test_sharding_covers_every_index_once(tmp_path):
    dataset = PairedDataset(textured_pairs(tmp_path, 7, size=(16, 16)))
    seen = [b["key"][0] for rank in (0, 1) for b in build_eval_loader(dataset, rank=rank, world_size=2)]
    assert sorted(seen) == sorted(r.key for r in dataset.records)
    assert next(iter(build_eval_loader(dataset)))["lq"].shape == (1, 3, 16, 16)
    mix = TrainingMix({"derain": dataset.records}, {"derain": 3}, crop_size=8)
    shards = [list(build_train_loader(mix, 1, seed=2, rank=r, world_size=2).sampler) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 10 and not set(shards[0]) & set(shards[1])
    with pytest.raises(DataError, match="rank 2 must be smaller than world_size 2"):
        build_eval_loader(dataset, rank=2, world_size=2)
