"""Benchmark adapters on tiny fabricated trees: counts, pairing, list files, problems, determinism."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cplir.data.benchmarks import list_benchmarks, load_benchmark, scan_benchmark, verify_images
from cplir.data.image_io import read_image_uint8
from cplir.errors import DataError

OFFSET = 100  # a degraded fabricated image is its clean image + OFFSET, so a wrong pairing shows in the pixels


def write_image(path: Path, value: int, size=(16, 16)) -> Path:
    """A constant image of grey ``value`` (format from the suffix; JPEG at quality 100 keeps it within ±2)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path, quality=100)
    return path


def build(root: Path, files, reverse: bool = False) -> Path:
    """Create ``files`` = [(relative path, grey value)] under ``root``, optionally in reverse order."""
    for relative, value in (reversed(files) if reverse else files):
        write_image(root / relative, value)
    return root


def promptir_files(five: bool = False):
    """[(relative path, value)] of a tiny PromptIR (``five``: AdaIR) tree, both splits."""
    files = [(f"Train/Denoise/{name}", 10 + 5 * i) for i, name in
             enumerate(["00001.bmp", "00002.bmp", "100080.jpg", "100098.jpg"])]
    for n in (1, 2, 3):
        files += [(f"Train/Derain/rainy/rain-{n}.png", 5 * n + OFFSET), (f"Train/Derain/gt/norain-{n}.png", 5 * n)]
    files += [("Train/Dehaze/original/0001.jpg", 20), ("Train/Dehaze/original/0002.jpg", 40),
              ("Train/Dehaze/synthetic/part1/0001_0.8_0.2.jpg", 20 + OFFSET),
              ("Train/Dehaze/synthetic/part1/0002_0.9_0.1.jpg", 40 + OFFSET),
              ("Train/Dehaze/synthetic/part2/0001_1_0.08.jpg", 20 + OFFSET)]
    files += [("test/denoise/bsd68/3096.png", 30), ("test/denoise/bsd68/12084.png", 60)]
    files += [(f"test/derain/Rain100L/{d}/{n}.png", 7 * n + (OFFSET if d == "input" else 0))
              for n in (1, 2) for d in ("input", "target")]
    files += [("test/dehaze/input/0001_0.8_0.2.jpg", 25 + OFFSET), ("test/dehaze/target/0001.png", 25),
              ("test/dehaze/input/0003_0.9_0.1.jpg", 55 + OFFSET), ("test/dehaze/target/0003.png", 55)]
    if five:
        for folder, (lq, gt) in {"Train/Deblur": ("blur", "sharp"), "Train/Enhance": ("low", "gt"),
                                 "test/deblur/gopro": ("input", "target"),
                                 "test/enhance/lol": ("input", "target")}.items():
            files += [(f"{folder}/{d}/{n}.png", 9 * n + (OFFSET if d == lq else 0)) for n in (1, 2) for d in (lq, gt)]
    return files


def grey(path: Path) -> int:
    return int(read_image_uint8(path)[0, 0, 0])


def assert_paired(records):
    """Every file pair holds the clean value + OFFSET in its degraded image."""
    pairs = [r for rs in records.values() for r in rs if r.degraded is not None]
    assert pairs
    for record in pairs:
        assert abs(grey(record.degraded) - grey(record.clean) - OFFSET) <= 2, record


def counts(records):
    return {task: len(items) for task, items in records.items()}


@pytest.fixture
def promptir_root(tmp_path):
    return build(tmp_path / "data", promptir_files())


def test_registry_lists_every_benchmark_and_rejects_unknown_names_options_splits(promptir_root):
    assert list_benchmarks() == sorted(["promptir_three_task", "adair_five_task", "mioir_seven_task",
                                        "mioir_synthesised", "cdd11", "allweather", "weatherbench", "paired_folder",
                                        "embedded", "sr_folder", "div2k", "sr_test_sets", "reside_indoor",
                                        "spa_data"])
    with pytest.raises(DataError, match="unknown benchmark 'nope'.*cdd11"):
        load_benchmark("nope", promptir_root)
    with pytest.raises(DataError, match=r"unknown option\(s\) \['colour'\].*tasks, sigmas, lists_dir"):
        load_benchmark("promptir_three_task", promptir_root, colour=1)
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_benchmark("promptir_three_task", promptir_root, split="val")
    with pytest.raises(DataError, match="option tasks"):
        load_benchmark("promptir_three_task", promptir_root, tasks=["denoise", "deblur"])


def test_promptir_train_counts_pairing_keys_and_stray_files(promptir_root):
    (promptir_root / "Train/Denoise/notes.txt").write_text("WED + BSD400")
    records, report = scan_benchmark("promptir_three_task", promptir_root, "train")
    assert counts(records) == {"denoise_15": 4, "denoise_25": 4, "denoise_50": 4, "derain": 3, "dehaze": 3}
    noisy = records["denoise_25"][0]
    assert (noisy.synth, dict(noisy.params), noisy.degraded) == ("noise_promptir", {"sigma": 25}, None)
    assert [r.key for r in records["denoise_15"]] == sorted(
        f"Train/Denoise/{n}" for n in ["00001.bmp", "00002.bmp", "100080.jpg", "100098.jpg"])
    assert [r.clean.name for r in records["derain"]] == ["norain-1.png", "norain-2.png", "norain-3.png"]
    assert [r.clean.name for r in records["dehaze"]] == ["0001.jpg", "0002.jpg", "0001.jpg"]
    assert records["dehaze"][2].key == "Train/Dehaze/synthetic/part2/0001_1_0.08.jpg"
    assert_paired(records)
    assert report.stray_files == [promptir_root / "Train/Denoise/notes.txt"]
    assert report.errors() == []
    assert counts(load_benchmark("promptir_three_task", promptir_root, "train", sigmas=[25], tasks="denoise")) == {
        "denoise_25": 4}


def test_promptir_list_files_restrict_samples_and_accept_the_a_prefix(promptir_root, tmp_path):
    lists = {"noisy/denoise.txt": "00001.bmp\na100080.jpg\n",  # the BSD400 name carries the "a" prefix
             "rainy/rainTrain.txt": "rainy/rain-1.png\nrainy/rain-3.png",
             "hazy/hazy_outside.txt": "synthetic/part2/0001_1_0.08.jpg\n"}
    for name, text in lists.items():
        (promptir_root / "data_dir" / name).parent.mkdir(parents=True, exist_ok=True)
        (promptir_root / "data_dir" / name).write_text(text)
    records, report = scan_benchmark("promptir_three_task", promptir_root, "train")
    assert counts(records) == {"denoise_15": 2, "denoise_25": 2, "denoise_50": 2, "derain": 2, "dehaze": 1}
    assert [r.clean.name for r in records["denoise_50"]] == ["00001.bmp", "100080.jpg"]
    assert [r.degraded.name for r in records["derain"]] == ["rain-1.png", "rain-3.png"]
    assert report.list_files == [promptir_root / "data_dir" / n for n in lists]
    assert_paired(records)

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "noisy").mkdir(parents=True)
    (elsewhere / "noisy/denoise_airnet.txt").write_text("a00002.bmp\n100098.jpg\nmissing.bmp\n")
    with pytest.raises(DataError, match=r"(?s)1 sample\(s\) lack a file:\n.*missing.bmp \(needed by .*airnet.txt"):
        load_benchmark("promptir_three_task", promptir_root, lists_dir=elsewhere)
    records = load_benchmark("promptir_three_task", promptir_root, lists_dir=elsewhere, allow_missing=True)
    assert [r.clean.name for r in records["denoise_25"]] == ["00002.bmp", "100098.jpg"]
    assert counts(records)["derain"] == 3  # no rain list in lists_dir: every pair


def test_promptir_and_adair_test_splits(tmp_path):
    root = build(tmp_path / "data", promptir_files(five=True))
    records = load_benchmark("promptir_three_task", root, "test")
    assert counts(records) == {"denoise_15": 2, "denoise_25": 2, "denoise_50": 2, "derain": 2, "dehaze": 2}
    assert [(r.degraded.name, r.clean.name) for r in records["dehaze"]] == [("0001_0.8_0.2.jpg", "0001.png"),
                                                                          ("0003_0.9_0.1.jpg", "0003.png")]
    assert records["denoise_15"][0].key == "test/denoise/bsd68/12084.png"
    assert_paired(records)
    five = load_benchmark("adair_five_task", root, "test")
    assert counts(five) == {"denoise_25": 2, "derain": 2, "dehaze": 2, "deblur": 2, "enhance": 2}
    assert_paired(five)
    train = load_benchmark("adair_five_task", root, "train")
    assert counts(train) == {"denoise_15": 4, "denoise_25": 4, "denoise_50": 4, "derain": 3, "dehaze": 3,
                             "deblur": 2, "enhance": 2}
    assert [r.clean.parent.name for r in train["enhance"]] == ["gt", "gt"]
    assert_paired(train)


def test_missing_task_folder_names_it_and_tasks_option_chooses_a_subset(promptir_root):
    for path in sorted((promptir_root / "Train/Dehaze").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (promptir_root / "Train/Dehaze").rmdir()
    with pytest.raises(DataError, match=r"Train/Dehaze is missing.*\n.*Train/Denoise"):
        load_benchmark("promptir_three_task", promptir_root)
    assert list(load_benchmark("promptir_three_task", promptir_root, tasks=["denoise", "derain"])) == [
        "denoise_15", "denoise_25", "denoise_50", "derain"]


def test_missing_pairs_are_listed_or_skipped_but_never_a_whole_task(promptir_root):
    (promptir_root / "Train/Derain/gt/norain-2.png").unlink()
    with pytest.raises(DataError, match=r"(?s)1 sample\(s\) lack a file:\n  \[derain\] .*norain-2.png \(needed by "
                                        r".*rain-2.png\).*allow_missing=True"):
        load_benchmark("promptir_three_task", promptir_root)
    records, report = scan_benchmark("promptir_three_task", promptir_root)
    assert [r.degraded.name for r in records["derain"]] == ["rain-1.png", "rain-3.png"]
    assert [(m.task, m.missing.name, m.referenced_by.name) for m in report.missing_pairs] == [
        ("derain", "norain-2.png", "rain-2.png")]
    assert len(load_benchmark("promptir_three_task", promptir_root, allow_missing=True)["derain"]) == 2

    for n in (1, 3):
        (promptir_root / f"Train/Derain/gt/norain-{n}.png").unlink()
    with pytest.raises(DataError, match="task 'derain' has no sample"):
        load_benchmark("promptir_three_task", promptir_root, allow_missing=True)


def test_many_missing_pairs_are_counted_and_the_first_ten_listed(tmp_path):
    root = build(tmp_path, [(f"input/{n:02d}.png", 1) for n in range(12)] + [("target/00.png", 1)])
    with pytest.raises(DataError) as error:
        load_benchmark("paired_folder", root)
    message = str(error.value)
    assert "11 sample(s) lack a file" in message and "... and 1 more" in message
    assert message.count("needed by") == 10 and "target/01.*" in message


def test_empty_task_folder_and_missing_root_raise(promptir_root, tmp_path):
    for path in (promptir_root / "Train/Derain/rainy").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"task 'derain': no image in .*Train/Derain/rainy"):
        load_benchmark("promptir_three_task", promptir_root)
    with pytest.raises(DataError, match=r"data root .*nowhere does not exist"):
        load_benchmark("cdd11", tmp_path / "nowhere")


def cdd11_files(split="train"):
    classes = ["low", "haze", "rain", "snow", "low_haze", "low_rain", "low_snow", "haze_rain", "haze_snow",
               "low_haze_rain", "low_haze_snow"]
    files = [(f"CDD-11_{split}/clear/{n}.png", 10 * n) for n in (1, 2, 3)]
    return files + [(f"CDD-11_{split}/{cls}/{n}.png", 10 * n + OFFSET) for i, cls in enumerate(classes)
                    for n in (1, 2, 3)[: 1 + i % 3]]


def test_cdd11_pairs_with_clear_from_either_root_and_checks_the_split(tmp_path):
    root = build(tmp_path, cdd11_files("train") + cdd11_files("test"))
    records = load_benchmark("cdd11", root, "train")
    assert [counts(records)[c] for c in ("low", "haze", "rain", "haze_snow", "low_haze_snow")] == [1, 2, 3, 3, 2]
    assert len(records) == 11
    assert all(r.clean.parent.name == "clear" and r.clean.name == r.degraded.name for rs in records.values()
               for r in rs)
    assert_paired(records)
    inner = load_benchmark("cdd11", root / "CDD-11_test", "test", classes=["haze_rain", "snow"])
    assert counts(inner) == {"haze_rain": 2, "snow": 1}
    assert inner["snow"][0].key == "snow/1.png"
    with pytest.raises(DataError, match="holds another split"):
        load_benchmark("cdd11", root / "CDD-11_test", "train")
    (root / "CDD-11_train/snow/1.png").unlink()
    (root / "CDD-11_train/snow").rmdir()
    with pytest.raises(DataError, match=r"CDD-11_train/snow is missing \(images of class 'snow'"):
        load_benchmark("cdd11", root, "train")


def test_allweather_list_file_derives_gt_by_directory_component(tmp_path):
    root = build(tmp_path / "aw", [("allweather/input/rain_input_01.png", 10 + OFFSET),
                                   ("allweather/gt/rain_input_01.png", 10),
                                   ("allweather/input/snow_02.jpg", 30 + OFFSET), ("allweather/gt/snow_02.jpg", 30)])
    (root / "allweather.txt").write_text(f"allweather/input/rain_input_01.png\n{root}/allweather/input/snow_02.jpg\n")
    records = load_benchmark("allweather", root)
    assert [(r.key, r.clean.relative_to(root).as_posix()) for r in records["allweather"]] == [
        ("allweather/input/rain_input_01.png", "allweather/gt/rain_input_01.png"),
        ("allweather/input/snow_02.jpg", "allweather/gt/snow_02.jpg")]
    assert_paired(records)
    (root / "other.txt").write_text("allweather/input/snow_02.jpg\n")
    assert counts(load_benchmark("allweather", root, list_file="other.txt", task="weather")) == {"weather": 1}
    (root / "allweather.txt").unlink()
    assert counts(load_benchmark("allweather", root)) == {"allweather": 2}  # no list: the whole input folder
    write_image(root / "flat/x.png", 1)
    (root / "bad.txt").write_text("flat/x.png\n")
    with pytest.raises(DataError, match="no folder named 'input'"):
        load_benchmark("allweather", root, list_file="bad.txt")


def test_weatherbench_matches_stems_with_configurable_folder_names(tmp_path):
    files = [("test/haze/input/a.jpg", 10 + OFFSET), ("test/haze/target/a.png", 10),
             ("test/haze/input/b.png", 20 + OFFSET), ("test/haze/target/b.png", 20),
             ("test/rain/input/c.jpg", 30 + OFFSET), ("test/rain/target/c.jpg", 30),
             ("test/snow/input/d.jpg", 40 + OFFSET), ("test/snow/target/d.bmp", 40),
             ("train/fog/lq/e.png", 50 + OFFSET), ("train/fog/hq/e.jpg", 50)]
    root = build(tmp_path, files)
    records = load_benchmark("weatherbench", root, "test")
    assert counts(records) == {"haze": 2, "rain": 1, "snow": 1}
    assert records["haze"][0].clean.name == "a.png"
    assert_paired(records)
    fog = load_benchmark("weatherbench", root, "train", tasks=["fog"], input_dir="lq", target_dir="hq")
    assert counts(fog) == {"fog": 1}
    assert_paired(fog)
    write_image(root / "test/haze/target/a.bmp", 10)
    with pytest.raises(DataError, match="several targets share its stem"):
        load_benchmark("weatherbench", root, "test")


def test_weatherbench_accepts_the_released_layout_without_a_split_folder(tmp_path):
    """CPLIR's test config reads WeatherBench/{rain,haze,snow}/{input,target} directly."""
    files = [(f"{task}/{folder}/{i}.png", 10 * i + (OFFSET if folder == "input" else 0))
             for task in ("rain", "haze", "snow") for i in (1, 2) for folder in ("input", "target")]
    root = build(tmp_path, files)
    records = load_benchmark("weatherbench", root, "test", tasks=["rain", "haze", "snow"])
    assert counts(records) == {"rain": 2, "haze": 2, "snow": 2}
    assert records["rain"][0].key == "rain/input/1.png"
    assert_paired(records)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="the train split"):  # neither ROOT/train nor task folders in ROOT
        load_benchmark("weatherbench", tmp_path / "empty", "train")


def test_paired_folder_with_task_label(tmp_path):
    root = build(tmp_path, [("lq/sub/x.jpg", 10 + OFFSET), ("hq/sub/x.png", 10), ("lq/y.png", 20 + OFFSET),
                            ("hq/y.png", 20)])
    records = load_benchmark("paired_folder", root, input_dir="lq", target_dir="hq", task="mine")
    assert [r.key for r in records["mine"]] == ["lq/sub/x.jpg", "lq/y.png"]
    assert_paired(records)


def test_mioir_seven_tasks_from_any_clean_folder(tmp_path):
    root = build(tmp_path, [("a.png", 1), ("nested/b.jpg", 2), ("nested/deeper/c.bmp", 3)])
    (root / "README.md").write_text("not an image")
    records, report = scan_benchmark("mioir_seven_task", root, "train", level="ood", sr_mode="pil")
    assert counts(records) == {t: 3 for t in ("sr", "blur", "noise", "jpeg", "rain", "haze", "lowlight")}
    assert dict(records["sr"][0].params) == {"mode": "pil"}
    assert dict(records["noise"][0].params) == {"level": "ood"}
    assert [r.key for r in records["haze"]] == ["a.png", "nested/b.jpg", "nested/deeper/c.bmp"]
    assert report.stray_files == [root / "README.md"]
    with pytest.raises(DataError, match="option level"):
        load_benchmark("mioir_seven_task", root, level="hard")


def test_records_do_not_depend_on_creation_or_listing_order(tmp_path, monkeypatch):
    first = load_benchmark("adair_five_task", build(tmp_path / "a", promptir_files(five=True)), "train")
    iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: reversed(list(iterdir(self))))
    root = build(tmp_path / "b", promptir_files(five=True), reverse=True)
    second = load_benchmark("adair_five_task", root, "train")

    def portable(records, base):
        return {task: [(r.key, r.clean.relative_to(base), r.degraded and r.degraded.relative_to(base), r.synth,
                        dict(r.params)) for r in rs] for task, rs in records.items()}

    assert portable(first, tmp_path / "a") == portable(second, tmp_path / "b")


def test_verify_images_finds_unreadable_files_and_size_mismatches(promptir_root):
    (promptir_root / "Train/Derain/gt/norain-1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    write_image(promptir_root / "Train/Derain/gt/norain-2.png", 10, size=(20, 16))
    records = load_benchmark("promptir_three_task", promptir_root, tasks=["derain"])
    problems = verify_images(records)
    assert [p.name for p, _ in problems] == ["norain-1.png", "rain-2.png"]
    assert "cannot read image" in problems[0][1] and "size 16x16 differs" in problems[1][1]
    assert verify_images(load_benchmark("cdd11", build(promptir_root / "c", cdd11_files()))) == []


def test_a_new_benchmark_takes_one_registration(tmp_path, monkeypatch):
    # As docs/extending.md "A benchmark": one decorated adapter; loading, options and repeats follow.
    from cplir.data.benchmarks import registry
    from cplir.data.benchmarks.pairing import pair_records, require_dir, same_name, scan_task
    from cplir.data.datasets import default_repeats

    monkeypatch.setattr(registry, "BENCHMARKS", dict(registry.BENCHMARKS))

    @registry.register_benchmark("toy_derain", tasks=("derain",), repeats={"derain": 10})
    def toy_derain(root, split, report, *, degraded_dir="rainy"):
        folder = require_dir(root / split / degraded_dir, "rainy images", "  ROOT/{train,test}/{rainy,clean}/NAME")
        images = scan_task(("derain",), folder, report)
        return {"derain": pair_records("derain", images, same_name(degraded_dir, "clean"), root, report)}

    root = build(tmp_path / "toy", [("train/rainy/a.png", 10), ("train/clean/a.png", 5), ("train/rainy/b.png", 10)])
    assert "toy_derain" in list_benchmarks() and registry.benchmark_options("toy_derain") == ["degraded_dir"]
    records, report = scan_benchmark("toy_derain", root)
    assert [r.key for r in records["derain"]] == ["train/rainy/a.png"]
    assert [m.missing.name for m in report.missing_pairs] == ["b.png"]
    assert default_repeats("toy_derain", records) == {"derain": 10}
