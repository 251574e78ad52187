"""Configuration: the shipped configs, ``_base_`` inheritance, ``--set`` overrides, validation errors."""

import math
from pathlib import Path

import pytest
import torch
import yaml

from cplir.config import dump_config, load_config, load_yaml_tree, to_dict
from cplir.data.datasets import default_repeats
from cplir.errors import ConfigError
from cplir.models import build_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(CONFIGS.glob("*.yaml"))
BASES = sorted((CONFIGS / "_base").glob("*.yaml"))
# The published architecture of each backbone, which every paper config must use.
PUBLISHED_ARCH = {
    "promptir": {"dim": 48, "num_blocks": [4, 6, 6, 8]},
    "cplir": {"dim": 48, "num_blocks": [4, 6, 6, 8]},
    "restormer": {"dim": 48, "num_blocks": [4, 6, 6, 8], "num_refinement_blocks": 4},
    "nafnet": {"width": 32, "middle_blk_num": 1, "enc_blk_nums": [1, 1, 1, 28], "dec_blk_nums": [1, 1, 1, 1]},
    "drsformer": {"dim": 48, "num_blocks": [4, 6, 6, 8], "heads": [1, 2, 4, 8]},
    "fsnet": {"num_res": 16, "base_channel": 32, "base_size": None},
    "mambair": {"dim": 48, "num_blocks": [4, 6, 6, 8], "num_refinement_blocks": 4, "mlp_ratio": 1.5},
}

# Training samples per epoch, as documented in the benchmark bases (published counts).
EPOCH_SAMPLES = {
    "three_task": 3 * 3 * (400 + 4744) + 120 * 200 + 72135,  # BSD400+WED x3 σ x3, Rain100L x120, OTS x1
    "five_task": 3 * 3 * (400 + 4744) + 120 * 200 + 72135 + 5 * 2103 + 20 * 485,  # + GoPro x5, LOL x20
    "seven_task": 7 * (800 + 2650),  # DF2K once per MiOIR task
    "allweather": 18069,
    "cdd11": 11 * 1183,
    "derain": 120 * 200,  # Rain100L x120
    "weatherbench": 41402,  # the paper's training-set size
}
BENCHMARK_OF = {
    "three-task": "three_task", "five-task": "five_task", "seven-task": "seven_task", "allweather": "allweather",
    "cdd11": "cdd11", "derain": "derain", "weatherbench": "weatherbench",
}
# (warm-up, cosine length, trained) in epochs: PromptIR's recipe, and AdaIR's for its five-task benchmark.
EPOCHS = {"five_task": (15, 180, 150)}
CPL_CONFIGS = [p for p in SHIPPED if load_yaml_tree(p).get("loss", {}).get("cpr", {}).get("enabled")]
# MCLIR's table rows: config stem -> (model, its published recipe: optimiser, schedule, batch, crop, iterations,
# EMA, loss weights l1/ssim) from the options each family base cites.
MCLIR_ROWS = {
    "ffanet-sots-indoor": ("ffanet", dict(lr=2e-4, betas=[0.9, 0.9], weight_decay=0.0, schedule="cosine_annealing",
                                          schedule_iters=100_000, min_lr=1e-8), 4, 128, 500_000, 0.999, (1.0, 0.0)),
    **{f"dehazeformer-{size}-sots-indoor": (
        f"dehazeformer_{size}", dict(lr=lr, betas=[0.9, 0.999], weight_decay=0.01, schedule="cosine",
                                     schedule_iters=300 * (13_990 // batch), min_lr=lr / 100),
        batch, 256, 301 * (13_990 // batch), 0.0, (1.0, 0.0))
       for size, batch, lr in (("t", 32, 4e-4), ("s", 16, 2e-4), ("b", 16, 2e-4))},
    "idt-spa": ("idt", dict(lr=1e-4, betas=[0.9, 0.999], weight_decay=0.0, schedule="multistep",
                            milestones=[45_000, 112_500, 157_500], gamma=0.1), 4, 128, 180_000, 0.0, (0.0, 1.0)),
    "swinir-light-x4": ("swinir_light_x4", dict(lr=2e-4, betas=[0.9, 0.999], weight_decay=0.0, schedule="multistep",
                                                milestones=[250_000, 400_000, 450_000, 475_000], gamma=0.5),
                        64, 256, 500_000, 0.999, (1.0, 0.0)),
    "edsr-baseline-x4": ("edsr_baseline", dict(lr=1e-4, betas=[0.9, 0.99], weight_decay=0.0, schedule="multistep",
                                               milestones=[200_000], gamma=0.5), 16, 192, 300_000, 0.999, (1.0, 0.0)),
}
MCLIR_CONFIGS = {name for row in MCLIR_ROWS for name in (row, f"mclir-{row}")}
# The sweeps below run on every shipped config under `make test`; `make test-fast` keeps one config of each kind
# (every config loads and builds a model skeleton, about 0.1 s each, which adds up over 55 configs and 7 sweeps).
FAST_SAMPLE = {"promptir-three-task", "cpl-three-task", "embedded-three-task-cpl", "ffanet-sots-indoor",
               "mclir-ffanet-sots-indoor"}


def sweep(items) -> list:
    """``items`` (config paths or stems) as parameters, all but the FAST_SAMPLE marked slow."""
    params = []
    for item in items:
        stem = item.stem if isinstance(item, Path) else item
        params.append(pytest.param(item, id=stem, marks=() if stem in FAST_SAMPLE else pytest.mark.slow))
    return params


def iterations_per_epoch(samples: int, gpus: int = 4, batch: int = 8) -> int:
    """DistributedSampler pads to ceil(N / gpus) per GPU; the loader drops the last partial batch."""
    return math.ceil(samples / gpus) // batch


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def config_error(path, overrides=()) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides)
    return str(err.value)


# --- the shipped configs -----------------------------------------------------------------------------------------
def test_the_shipped_set_is_complete():
    names = {p.stem for p in SHIPPED}
    for bench in ("three-task", "five-task", "seven-task", "allweather", "weatherbench", "cdd11"):
        assert {f"promptir-{bench}", f"cpl-{bench}"} <= names
    assert {"cpl-cdd11-p10", "cpl-cdd11-p15", "mclir-promptir-derain", "mclir-cpl-three-task",
            "embedded-three-task-promptir", "embedded-three-task-cpl", "embedded-five-task-cpl",
            "embedded-seven-task-cpl", "embedded-mclir"} <= names
    assert {"nafnet-five-task", "nafnet-cpl-five-task", "restormer-seven-task", "embedded-three-task-nafnet-cpl",
            "embedded-three-task-restormer-cpl"} <= names
    for backbone in ("drsformer", "fsnet", "mambair"):  # CPL Table X
        assert {f"{backbone}-five-task", f"{backbone}-cpl-five-task", f"embedded-three-task-{backbone}-cpl"} <= names
    for row in MCLIR_ROWS:  # MCLIR's tables: baseline and +SPN
        assert {row, f"mclir-{row}"} <= names
    assert {"embedded-sr-x4", "embedded-sr-x4-mclir", "embedded-dehaze", "embedded-dehaze-mclir"} <= names


@pytest.mark.parametrize("path", sweep(SHIPPED))
def test_shipped_config_loads_and_says_what_it_reproduces(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert path.read_text().startswith("#"), "every config starts with a header comment"
    assert len(cfg.reproduces) > 20
    with torch.device("meta"):  # every argument is one the model takes (shapes only, no memory)
        build_model(cfg.model.name, **cfg.model.args)
    assert cfg.data.test, "every config names its test sets"
    if cfg.loss.cpr.enabled:
        # sparse prompts are checked when the config loads (check_supports_cpr); the paper's settings here
        assert cfg.model.args["top_k"] == 1 and cfg.loss.cpr.num_negatives == 4
    cpr, spn = cfg.loss.cpr, cfg.loss.spn
    embedded = path.stem.startswith("embedded-")
    # Embedded demo configs run without downloads (random VGG or the pyramid); all others use ImageNet weights.
    needs_imagenet = ((cpr.enabled and cpr.features != "pyramid" and cpr.vgg_weights != "random")
                      or (spn.enabled and spn.vgg_weights != "random"))
    assert needs_imagenet == (not embedded and (cpr.enabled or spn.enabled))
    assert embedded or (cpr.features == "vgg" and "random" not in (cpr.vgg_weights, spn.vgg_weights))


@pytest.mark.parametrize("path", BASES, ids=lambda p: p.stem)
def test_bases_are_mappings_with_comments(path):
    assert path.read_text().startswith("#")
    assert isinstance(load_yaml_tree(path), dict)


@pytest.mark.parametrize("path", sweep(p for p in SHIPPED if not p.stem.startswith("embedded-") and p not in CPL_CONFIGS
                                        and p.stem not in MCLIR_CONFIGS))
def test_baseline_configs_follow_the_promptir_recipe(path):
    cfg = load_config(path)
    o = cfg.train.optim
    assert (o.lr, o.weight_decay, o.min_lr, cfg.data.batch_size, cfg.data.crop_size) == (2e-4, 0.01, 0.0, 8, 128)
    assert o.schedule == "cosine" and o.betas == [0.9, 0.999]
    assert cfg.loss.l1 == 1.0 and cfg.train.ema_decay > 0
    published = PUBLISHED_ARCH[cfg.model.name]
    assert {k: cfg.model.args.get(k) for k in published} == published
    (bench,) = [b for b in BENCHMARK_OF if b in path.stem]
    ipe = iterations_per_epoch(EPOCH_SAMPLES[BENCHMARK_OF[bench]])
    warmup, cosine, trained = EPOCHS.get(BENCHMARK_OF[bench], (15, 150, 120))
    assert (o.warmup_iters, o.schedule_iters, cfg.train.iterations) == (warmup * ipe, cosine * ipe, trained * ipe)


@pytest.mark.parametrize("path", sweep(p for p in CPL_CONFIGS if not p.stem.startswith("embedded-")))
def test_cpl_configs_follow_the_published_cplir_options(path):
    cfg = load_config(path)
    o = cfg.train.optim
    assert (o.lr, o.betas, o.weight_decay, o.warmup_iters) == (2e-4, [0.9, 0.9], 0.0, 0)
    assert (o.schedule, o.periods, o.restart_weights, o.min_lr) == ("cosine_restart", [250_000] * 4, [1.0] * 4, 1e-7)
    assert cfg.train.iterations == 1_000_000 and cfg.train.ema_decay == 0.999
    assert cfg.data.batch_size * 2 == 8 and cfg.data.crop_size == 128  # batch 8 on 2 GPUs
    if cfg.model.name == "cplir":
        assert cfg.model.args["dim"] == 48 and cfg.model.args["num_blocks"] == [4, 6, 6, 8]


@pytest.mark.parametrize("stem", sweep(sorted(MCLIR_CONFIGS)))
def test_mclir_rows_follow_their_networks_published_recipes(stem):
    """Baseline and +SPN of a row share the recipe and differ in the SPN loss only."""
    row = stem.removeprefix("mclir-")
    model, optim, batch, crop, iterations, ema, (l1, ssim) = MCLIR_ROWS[row]
    cfg = load_config(CONFIGS / f"{stem}.yaml")
    o = to_dict(cfg)["train"]["optim"]
    assert cfg.model.name == model
    for key, value in optim.items():
        assert o[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert (o["warmup_iters"], o["grad_clip"]) == (0, 0.0)
    assert (cfg.data.batch_size, cfg.data.crop_size, cfg.train.iterations, cfg.train.ema_decay) == (
        batch, crop, iterations, ema)
    assert (cfg.loss.l1, cfg.loss.ssim, cfg.loss.cpr.enabled, cfg.loss.spn.enabled) == (
        l1, ssim, False, stem.startswith("mclir-"))
    assert cfg.eval.weights == ("ema" if ema else "model")
    if stem.startswith("mclir-"):
        base, spn = to_dict(load_config(CONFIGS / f"{row}.yaml")), to_dict(cfg)
        for tree in (base, spn):
            tree.pop("name"), tree.pop("reproduces"), tree["loss"].pop("spn")
        assert base == spn
        assert (cfg.loss.spn.lam, cfg.loss.spn.intervals, cfg.loss.spn.refresh) == (
            0.001, [100, 200, 500, 1000], "interval")
    with torch.device("meta"):
        net = build_model(cfg.model.name, **cfg.model.args)
    if model in ("swinir_light_x4", "edsr_baseline"):
        assert net.scale == 4 and (cfg.eval.protocol, cfg.eval.crop_border) == ("basicsr_y", 4)
        assert cfg.data.train.benchmark == "div2k" and cfg.data.test[0].benchmark == "sr_test_sets"
    # the published input conventions, where the network has one
    assert cfg.model.args.get("input_norm", False) == (model == "ffanet")
    assert cfg.model.args.get("signed_range", False) == model.startswith("dehazeformer")


def test_five_task_uses_adair_epochs():
    cfg = load_config(CONFIGS / "promptir-five-task.yaml")
    assert (cfg.train.optim.warmup_iters, cfg.train.optim.schedule_iters, cfg.train.iterations) == (
        76_230, 914_760, 762_300)


def test_three_task_cpl_says_what_the_paper_says():
    cfg = load_config(CONFIGS / "cpl-three-task.yaml")
    assert cfg.model.name == "cplir"
    assert cfg.model.args["top_k"] == 1 and cfg.model.args["num_prompts"] == 5
    assert cfg.loss.cpr.enabled and cfg.loss.cpr.alpha == 0.01 and cfg.loss.cpr.num_negatives == 4
    assert cfg.loss.cpr.form == "paper" and cfg.loss.cpr.vgg == "vgg19" and not cfg.loss.spn.enabled
    assert cfg.eval.protocol == "promptir" and cfg.eval.crop_border == 0
    assert not cfg.data.repeats  # the benchmark's registered repeats apply: PromptIR's published mix
    tasks = dict.fromkeys(["denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"])
    assert default_repeats(cfg.data.train.benchmark, tasks) == {"denoise_15": 3, "denoise_25": 3, "denoise_50": 3,
                                                               "derain": 120, "dehaze": 1}
    samples = EPOCH_SAMPLES["three_task"]
    assert samples == 142431
    assert iterations_per_epoch(samples) == 4451
    base = load_config(CONFIGS / "promptir-three-task.yaml")
    assert base.train.iterations == 120 * 4451 == 534120  # "about 534k iterations" (PromptIR §4)
    assert abs(base.train.iterations - 534000) / 534000 < 0.001
    assert base.train.optim.warmup_iters == 15 * 4451 and base.train.optim.schedule_iters == 150 * 4451


@pytest.mark.parametrize("path", sweep(CPL_CONFIGS))
def test_cpl_alpha_is_the_papers_unified_default(path):
    assert load_config(path).loss.cpr.alpha == 0.01


def test_protocols_per_benchmark():
    expect = {"three-task": ("promptir", 0), "five-task": ("promptir", 0), "cdd11": ("promptir", 0),
              "seven-task": ("basicsr_rgb", 4), "allweather": ("basicsr_y", 0), "weatherbench": ("basicsr_y", 0)}
    for bench, protocol in expect.items():
        for model in ("promptir", "cpl"):
            cfg = load_config(CONFIGS / f"{model}-{bench}.yaml")
            assert (cfg.eval.protocol, cfg.eval.crop_border) == protocol, (model, bench)
            weatherbench = bench == "weatherbench"
            assert cfg.eval.lpips.enabled == weatherbench
            assert (cfg.eval.pad_multiple, cfg.eval.pad_mode) == ((16, "reflect") if weatherbench else (8, "reflect"))
            assert cfg.eval.weights == ("model" if weatherbench else "ema")  # CPLIR's test config loads `params`


@pytest.mark.parametrize("path", sweep(SHIPPED))
def test_quoted_paper_numbers_come_from_the_table(path):
    """A config that quotes a paper number quotes it from cplir.paper_numbers, with the protocol of its table."""
    import re

    from cplir.paper_numbers import PAPER_RESULTS

    quoted = {
        "promptir-three-task": "promptir/three_task", "cpl-three-task": "cpl/three_task",
        "promptir-five-task": "promptir/five_task", "cpl-five-task": "cpl/five_task",
        "promptir-seven-task": "promptir/seven_task", "cpl-seven-task": "cpl/seven_task",
        "promptir-allweather": "promptir/allweather", "cpl-allweather": "cpl/allweather",
        "promptir-weatherbench": "promptir/weatherbench", "cpl-weatherbench": "cpl/weatherbench",
        "promptir-cdd11": "promptir/cdd11", "cpl-cdd11": "cpl/cdd11", "cpl-cdd11-p10": "cpl/cdd11_p10",
        "cpl-cdd11-p15": "cpl/cdd11_p15", "mclir-cpl-three-task": "cpl/three_task",
        "nafnet-five-task": "nafnet/five_task", "nafnet-cpl-five-task": ("cpl/nafnet_five_task", "nafnet/five_task"),
        **{f"{b}-five-task": f"{b}/five_task" for b in ("drsformer", "fsnet", "mambair")},
        **{f"{b}-cpl-five-task": (f"cpl/{b}_five_task", f"{b}/five_task") for b in ("drsformer", "fsnet", "mambair")},
        "ffanet-sots-indoor": "ffanet/sots_indoor", "idt-spa": "idt/spa", "swinir-light-x4": "swinir_light/x4",
        "edsr-baseline-x4": "edsr_baseline/x4",
        **{f"dehazeformer-{s}-sots-indoor": f"dehazeformer_{s}/sots_indoor" for s in "tsb"},
        **{f"mclir-{row}": (f"mclir/{key.replace('/', '_')}", key) for row, key in (
            ("ffanet-sots-indoor", "ffanet/sots_indoor"), ("idt-spa", "idt/spa"),
            ("swinir-light-x4", "swinir_light/x4"), ("edsr-baseline-x4", "edsr_baseline/x4"),
            *((f"dehazeformer-{s}-sots-indoor", f"dehazeformer_{s}/sots_indoor") for s in "tsb"))},
    }
    cfg = load_config(path)
    numbers = re.findall(r"\b\d+\.\d{2,}\b", re.sub(r"(arXiv |α=)\S+", "", cfg.reproduces))
    if path.stem not in quoted:
        assert not numbers, f"{path.stem} quotes {numbers}: add its row to cplir.paper_numbers and to this test"
        return
    keys = quoted[path.stem] if isinstance(quoted[path.stem], tuple) else (quoted[path.stem],)
    results = [PAPER_RESULTS[key] for key in keys]  # the config's own row first, then any baseline it names
    assert all(r.quote() in cfg.reproduces for r in results)
    assert set(numbers) <= {n for r in results for n in re.findall(r"\d+\.\d+", r.quote())}
    result = results[0]
    if path.stem.startswith(("promptir-", "cpl-", "nafnet-", "drsformer-", "fsnet-", "mambair-")) or \
            path.stem in MCLIR_CONFIGS:
        assert (cfg.eval.protocol, cfg.eval.crop_border) == (result.protocol, result.crop_border)
        assert result.protocol in cfg.reproduces


def test_paper_table_is_consistent():
    from cplir.paper_numbers import PAPER_RESULTS

    three = PAPER_RESULTS["cpl/three_task"]
    assert dict(three.per_task)["SOTS"] == 31.27 and dict(three.per_task)["Rain100L"] == 38.77
    for result in PAPER_RESULTS.values():
        if result.per_task:
            assert abs(sum(v for _, v in result.per_task) / len(result.per_task) - result.psnr) < 0.006


def test_cdd11_prompt_counts_differ_only_in_p():
    base, p10, p15 = (to_dict(load_config(CONFIGS / f"cpl-cdd11{s}.yaml")) for s in ("", "-p10", "-p15"))
    assert [d["model"]["args"]["num_prompts"] for d in (base, p10, p15)] == [5, 10, 15]
    for other in (p10, p15):
        other = dict(other, name=base["name"], reproduces=base["reproduces"])
        other["model"] = dict(other["model"], args=dict(other["model"]["args"], num_prompts=5))
        assert other == base


def test_mclir_configs_use_the_published_spn_settings():
    for stem in ("mclir-promptir-derain", "mclir-cpl-three-task"):
        spn = load_config(CONFIGS / f"{stem}.yaml").loss.spn
        assert spn.enabled and spn.lam == 0.001 and spn.intervals == [100, 200, 500, 1000]
        assert spn.decays == [0.1] * 4 and spn.start == 0.1 and spn.layer_weights == [0.2, 0.3, 0.5]
    both = load_config(CONFIGS / "mclir-cpl-three-task.yaml")
    assert both.loss.cpr.enabled and both.loss.cpr.alpha == 0.01
    derain = load_config(CONFIGS / "mclir-promptir-derain.yaml")
    assert derain.model.name == "promptir" and derain.data.repeats == {"derain": 120}


# The Table X and FFA-Net demos train on 32x32 crops; MambaIR's channel attention needs a width of at least 30 (dim 32).
SMALL_CROP = {"embedded-three-task-drsformer-cpl", "embedded-three-task-fsnet-cpl", "embedded-three-task-mambair-cpl",
              "embedded-dehaze", "embedded-dehaze-mclir"}  # FFA-Net: 64 channels at full resolution
MAX_PARAMS = {"embedded-three-task-mambair-cpl": 5_000_000}


@pytest.mark.parametrize("path", sweep(p for p in SHIPPED if p.stem.startswith("embedded-")))
def test_embedded_configs_are_tiny_and_build(path):
    cfg = load_config(path)
    d, t = cfg.data, cfg.train
    crop = 32 if path.stem in SMALL_CROP else 64
    assert (d.crop_size, d.batch_size, d.num_workers, d.max_val_images) == (crop, 4, 0, 4)
    assert 100 <= t.iterations <= 500 and t.val_every == 50 and t.ema_decay == 0.99
    assert d.train.benchmark == "embedded" and all(s.benchmark == "embedded" for s in d.test)
    assert d.train.options["variant"] == d.test[0].options["variant"]
    torch.manual_seed(0)
    net = build_model(cfg.model.name, **cfg.model.args)
    assert sum(p.numel() for p in net.parameters()) < MAX_PARAMS.get(path.stem, 2_000_000)
    lr = crop // net.scale  # crop_size is the target size: a super-resolution network sees a smaller input
    with torch.no_grad():
        assert net(torch.rand(2, 3, lr, lr)).shape == (2, 3, crop, crop)  # FSNet refuses to train on one image


def test_embedded_variants_and_alphas():
    got = {p.stem: load_config(p) for p in SHIPPED if p.stem.startswith("embedded-")}
    assert got["embedded-three-task-cpl"].loss.cpr.alpha == 0.01
    assert got["embedded-five-task-cpl"].data.train.options["variant"] == "five_task"
    seven = got["embedded-seven-task-cpl"]
    assert seven.data.train.options["variant"] == "seven_task"
    assert (seven.eval.protocol, seven.eval.crop_border) == ("basicsr_rgb", 4)
    assert got["embedded-mclir"].loss.spn.enabled and not got["embedded-mclir"].loss.cpr.enabled
    for task in ("sr-x4", "dehaze"):  # MCLIR's single-task settings: baseline and +SPN differ in SPN only
        base, spn = to_dict(got[f"embedded-{task}"]), to_dict(got[f"embedded-{task}-mclir"])
        assert spn["loss"]["spn"]["enabled"] and spn["loss"]["spn"]["intervals"] == [10, 20, 50, 100]
        for tree in (base, spn):
            tree.pop("name"), tree.pop("reproduces"), tree["loss"].pop("spn")
        assert base == spn
    sr = got["embedded-sr-x4"]
    assert sr.data.train.options["variant"] == "sr_x4" and (sr.eval.protocol, sr.eval.crop_border) == ("basicsr_y", 4)
    assert got["embedded-dehaze"].data.train.options["variant"] == "dehaze"


# --- inheritance ---------------------------------------------------------------------------------------------------
def test_multi_level_inheritance_with_a_list_of_bases(tmp_path):
    write(tmp_path / "bases/root.yaml",
          {"seed": 1, "train": {"iterations": 100, "optim": {"lr": 1e-3, "betas": [0.8, 0.9]}}})
    write(tmp_path / "bases/mid.yaml", {"_base_": "root.yaml", "train": {"optim": {"lr": 5e-4}}, "name": "mid"})
    write(tmp_path / "bases/other.yaml", {"_base_": ["root.yaml"], "train": {"log_every": 7}, "name": "other"})
    path = write(tmp_path / "leaf.yaml", {"_base_": ["bases/mid.yaml", "bases/other.yaml"], "seed": 3})
    cfg = load_config(path)
    assert cfg.seed == 3  # the file itself wins over its bases
    assert cfg.name == "other"  # later bases win over earlier ones
    assert cfg.train.log_every == 7 and cfg.train.iterations == 100
    # other.yaml re-reads root.yaml (a diamond, not a cycle) after mid.yaml: its lr 1e-3 wins over mid's 5e-4
    assert cfg.train.optim.lr == 1e-3 and cfg.train.optim.betas == [0.8, 0.9]


def test_mappings_merge_and_lists_replace(tmp_path):
    write(tmp_path / "base.yaml", {"model": {"name": "cplir",
                                             "args": {"dim": 16, "num_blocks": [2, 2, 2, 2], "top_k": 1}},
                                   "data": {"test": [{"root": "a"}, {"root": "b"}], "repeats": {"derain": 120}}})
    path = write(tmp_path / "child.yaml", {"_base_": "base.yaml",
                                           "model": {"args": {"num_blocks": [1, 1, 1, 1]}},
                                           "data": {"test": [{"root": "c"}], "repeats": {"dehaze": 2}}})
    cfg = load_config(path)
    assert cfg.model.args == {"dim": 16, "num_blocks": [1, 1, 1, 1], "top_k": 1}
    assert [s.root for s in cfg.data.test] == ["c"]  # a list is replaced, never merged element-wise
    assert cfg.data.repeats == {"derain": 120, "dehaze": 2}


def test_a_mapping_marked_delete_replaces_the_inherited_one(tmp_path):
    write(tmp_path / "bases/promptir.yaml", {"model": {"name": "promptir", "args": {"dim": 16, "num_prompts": 5}}})
    write(tmp_path / "bases/nafnet.yaml", {"model": {"name": "nafnet", "args": {"_delete_": True, "width": 8}}})
    mid = write(tmp_path / "mid.yaml", {"_base_": ["bases/promptir.yaml", "bases/nafnet.yaml"],
                                        "model": {"args": {"middle_blk_num": 2}}})
    assert load_config(mid).model.args == {"width": 8, "middle_blk_num": 2}
    # the file keeps that meaning when it is itself a base after another backbone's config
    leaf = write(tmp_path / "leaf.yaml", {"_base_": ["bases/promptir.yaml", "mid.yaml"]})
    assert load_config(leaf).model.args == {"width": 8, "middle_blk_num": 2}
    assert "_delete_" not in str(to_dict(load_config(leaf)))


@pytest.mark.slow
def test_backbone_configs_build_the_published_networks():
    counts = {"nafnet-five-task": 17_111_907, "restormer-seven-task": 26_126_644,
              "nafnet-cpl-five-task": 25_183_127,  # GoPro width-32 NAFNet + four sparse prompt blocks
              "drsformer-five-task": 33_655_424, "fsnet-five-task": 13_275_689, "mambair-five-task": 26_779_480,
              "drsformer-cpl-five-task": 47_079_687, "fsnet-cpl-five-task": 16_945_459,
              "mambair-cpl-five-task": 38_040_822}
    for stem, expected in counts.items():
        cfg = load_config(CONFIGS / f"{stem}.yaml")
        with torch.device("meta"):
            net = build_model(cfg.model.name, **cfg.model.args)
        assert sum(p.numel() for p in net.parameters()) == expected, stem
    seven = load_config(CONFIGS / "restormer-seven-task.yaml")
    promptir_seven = load_config(CONFIGS / "promptir-seven-task.yaml")
    assert (seven.data, seven.train, seven.eval) == (promptir_seven.data, promptir_seven.train, promptir_seven.eval)
    assert load_config(CONFIGS / "nafnet-five-task.yaml").data == load_config(CONFIGS / "promptir-five-task.yaml").data


@pytest.mark.parametrize("backbone", ["nafnet", "drsformer", "fsnet", "mambair"])
def test_table_x_rows_differ_only_in_cpl(backbone):
    cpl, plain = (to_dict(load_config(CONFIGS / f"{backbone}{s}-five-task.yaml")) for s in ("-cpl", ""))
    assert cpl["model"]["args"] == dict(plain["model"]["args"], prompt="sparse", num_prompts=5, top_k=1,
                                        renormalize=False)
    assert cpl["loss"]["cpr"]["enabled"] and cpl["loss"]["cpr"]["alpha"] == 0.01
    assert cpl["eval"] == plain["eval"]
    # the CPL row trains with the CPL recipe, as cpl-five-task does; the baseline keeps PromptIR's
    promptir_cpl = to_dict(load_config(CONFIGS / "cpl-five-task.yaml"))
    assert (cpl["train"], cpl["data"]) == (promptir_cpl["train"], promptir_cpl["data"])
    assert dict(cpl["data"], batch_size=8) == plain["data"]


@pytest.mark.parametrize("backbone, crop", [("nafnet", 64), ("restormer", 64), ("drsformer", 32), ("fsnet", 32),
                                            ("mambair", 32)])
def test_embedded_backbone_cpl_is_the_cpl_demo_with_another_model(backbone, crop):
    embedded = to_dict(load_config(CONFIGS / f"embedded-three-task-{backbone}-cpl.yaml"))
    reference = to_dict(load_config(CONFIGS / "embedded-three-task-cpl.yaml"))
    assert embedded["model"]["name"] == backbone and embedded["model"]["args"]["prompt"] == "sparse"
    assert embedded["data"] == dict(reference["data"], crop_size=crop)  # the Table X demos: smaller crops, speed
    for key in ("train", "eval", "loss"):
        assert embedded[key] == reference[key], key


# --- overrides -----------------------------------------------------------------------------------------------------
def test_overrides_are_parsed_as_yaml():
    cfg = load_config(CONFIGS / "cpl-three-task.yaml", [
        "train.iterations=5", "loss.cpr.alpha=3.0e-3", "model.args.dim=16", "model.args.num_blocks=[1,1,1,1]",
        "data.train.root=/datasets/promptir", "data.train.options.level=ood", "data.repeats.derain=60",
        "train.optim.betas=[0.9, 0.99]", "loss.cpr.enabled=false"])
    assert cfg.train.iterations == 5
    assert cfg.loss.cpr.alpha == 0.003 and isinstance(cfg.loss.cpr.alpha, float)
    assert cfg.model.args["dim"] == 16 and cfg.model.args["num_blocks"] == [1, 1, 1, 1]
    assert cfg.model.args["heads"] == [1, 2, 4, 8]  # untouched siblings survive
    assert cfg.data.train.root == "/datasets/promptir" and cfg.data.train.options == {"level": "ood"}
    tasks = dict.fromkeys(["denoise_15", "derain", "dehaze"])
    resolved = default_repeats(cfg.data.train.benchmark, tasks, cfg.data.repeats)
    assert resolved == {"denoise_15": 3, "derain": 60, "dehaze": 1}  # one repeat overridden, the others kept
    assert cfg.train.optim.betas == [0.9, 0.99] and cfg.loss.cpr.enabled is False


@pytest.mark.parametrize("text", ["3e-3", "3E-3", "+3e-3"])
def test_exponent_without_a_dot_is_a_float(text):
    assert load_config(CONFIGS / "cpl-three-task.yaml", [f"loss.cpr.alpha={text}"]).loss.cpr.alpha == 0.003


def test_override_indexes_into_a_list_of_test_sets():
    cfg = load_config(CONFIGS / "cpl-three-task.yaml", ["data.test.0.root=/d/bench"])
    assert cfg.data.test[0].root == "/d/bench"
    with pytest.raises(ConfigError, match="not an index"):
        load_config(CONFIGS / "cpl-three-task.yaml", ["data.test.9.root=/d/bench"])


@pytest.mark.parametrize("base", [5, [None]])
def test_malformed_base_is_a_config_error(tmp_path, base):
    path = write(tmp_path / "c.yaml", {"_base_": base})
    with pytest.raises(ConfigError, match="_base_ must be"):
        load_config(path)


def test_cpr_needs_prompts_outside_the_top_k():
    with pytest.raises(ConfigError, match="needs top_k < num_prompts"):
        load_config(CONFIGS / "cpl-three-task.yaml", ["model.args.top_k=5"])


def test_model_checks_remembered_per_model_still_refuse_every_time():
    """check_model remembers each model's facts; a second read of the same model must refuse exactly as the
    first, a dense model must not inherit a sparse one's answer, and bad arguments are never remembered."""
    embedded = CONFIGS / "embedded-three-task-cpl.yaml"
    for _ in range(2):
        with pytest.raises(ConfigError, match="needs top_k < num_prompts"):
            load_config(embedded, ["model.args.top_k=5"])
        with pytest.raises(ConfigError, match="all Sparse Prompt Modules"):
            load_config(embedded, ["model.name=promptir", "model.args={dim: 16, num_blocks: [1, 1, 1, 1], "
                                   "num_refinement_blocks: 1}"])
        with pytest.raises(ConfigError, match="dim"):
            load_config(embedded, ["model.args.dim=15"])
        assert load_config(embedded).loss.cpr.enabled


def test_a_list_of_test_sets_can_be_replaced_by_an_override():
    cfg = load_config(CONFIGS / "cpl-three-task.yaml",
                      ["data.test=[{benchmark: promptir_three_task, root: /d/promptir, split: test}]"])
    assert [(s.benchmark, s.root) for s in cfg.data.test] == [("promptir_three_task", "/d/promptir")]


def test_overrides_do_not_leak_into_the_file(tmp_path):
    path = write(tmp_path / "c.yaml", {"train": {"iterations": 10}})
    assert load_config(path, ["train.iterations=3"]).train.iterations == 3
    assert load_config(path).train.iterations == 10


# --- errors --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("override, words", [
    ("train.iterations=abc", ["train.iterations", "whole number"]),
    ("train.iterations=2.5", ["train.iterations", "whole number"]),
    ("loss.cpr.alpha=[1]", ["loss.cpr.alpha", "number"]),
    ("loss.cpr.enabled=yes please", ["loss.cpr.enabled", "true or false"]),
    ("model.args=5", ["model.args", "mapping"]),
    ("train.iteration=5", ["train.iteration", "did you mean 'iterations'"]),
    ("loss.cpr.alfa=0.1", ["loss.cpr.alfa", "did you mean 'alpha'"]),
    ("eval.protocol=psnr_y", ["eval.protocol", "promptir", "basicsr_y", "psnr_y"]),
    ("loss.cpr.form=mine", ["loss.cpr.form", "paper"]),
    ("train.amp=fp8", ["train.amp", "bf16"]),
    ("train.optim.lr=-1", ["train.optim.lr", "positive"]),
    ("train.optim.schedule=multistep", ["train.optim.milestones"]),  # a multistep schedule needs its milestones
    ("eval.tile=16", ["eval.tile_overlap", "smaller than the tile"]),  # the default overlap 32 exceeds the tile
    ("data.crop_size=100", ["data.crop_size", "multiple of 8"]),
    ("train.iterations.max=3", ["iterations", "not a section"]),
    ("model.name=promptir", ["loss.cpr", "cplir", "promptir"]),  # CPR needs sparse prompts
])
def test_bad_values_name_the_key(override, words):
    message = config_error(CONFIGS / "embedded-three-task-cpl.yaml", [override])
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("override", ["train.iterations", "=5", " =5", "train.iterations=[1,"])
def test_malformed_overrides(override):
    assert override.strip() in config_error(CONFIGS / "embedded-three-task-cpl.yaml", [override])


def test_unknown_top_level_key_in_a_file(tmp_path):
    path = write(tmp_path / "c.yaml", {"trian": {"iterations": 5}})
    message = config_error(path)
    assert "unknown config key trian" in message and "did you mean 'train'" in message


def test_base_cycle(tmp_path):
    write(tmp_path / "a.yaml", {"_base_": "b.yaml"})
    write(tmp_path / "b.yaml", {"_base_": ["c.yaml"]})
    write(tmp_path / "c.yaml", {"_base_": "a.yaml"})
    message = config_error(tmp_path / "a.yaml")
    assert "cycle" in message and all(f"{n}.yaml" in message for n in "abc")


def test_missing_base_file(tmp_path):
    path = write(tmp_path / "c.yaml", {"_base_": "nowhere/base.yaml"})
    message = config_error(path)
    assert "base.yaml" in message and "does not exist" in message


def test_invalid_yaml_and_non_mapping_files(tmp_path):
    assert "not valid YAML" in config_error(write(tmp_path / "bad.yaml", "train: [1,\n"))
    assert "mapping" in config_error(write(tmp_path / "list.yaml", "- 1\n- 2\n"))


# --- round trip ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stem", ["cpl-three-task", "mclir-cpl-three-task", "embedded-seven-task-cpl",
                                  "cpl-allweather"])
def test_dump_then_load_is_the_same_config(tmp_path, stem):
    cfg = load_config(CONFIGS / f"{stem}.yaml", ["model.args.dim=16"])
    dump_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(tmp_path / "run" / "config.yaml")
    assert again == cfg and to_dict(again) == to_dict(cfg)
