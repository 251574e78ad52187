"""Restoring large images: peak memory and time tiled vs whole, bf16 vs fp32, the cost of x8 self-ensemble, and
what tiling costs in PSNR (global vs per-tile routing). Figures go to docs/benchmarks.md.

    python bench/bench_restore.py            # published-size CPL model, 2048x2048 image (long: the lead runs it)
    python bench/bench_restore.py --quick    # tiny model and sizes: checks that the script runs

Peak memory is the peak resident set size of a fresh subprocess per variant (``ru_maxrss``), so one variant's
allocations cannot hide another's. The published-size model has random weights here (time and memory do not depend
on the values); the PSNR of tiling is measured with the demo's trained model (``make demo``), or, with ``--quick``
and no demo run, an untrained tiny model (labelled as such).
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_best  # noqa: E402

from cplir.inference import Restorer  # noqa: E402
from cplir.inference.tiling import PEAK_PER_LARGEST_ACTIVATION, available_memory, largest_activation_bytes  # noqa: E402
from cplir.models import build_model  # noqa: E402

TINY = dict(dim=16, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, prompt_sizes=(16, 8, 4))
GOAL_PEAK_GB = 3.0
GOAL_BF16_SPEEDUP = 2.0


def settings(quick: bool) -> dict:
    if quick:
        return dict(model=TINY, size=128, tile=64, overlap=16, small=64, psnr_tile=64, psnr_overlap=16)
    return dict(model={}, size=2048, tile=512, overlap=32, small=512, psnr_tile=128, psnr_overlap=32)


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def child(spec: dict) -> None:
    """Run one restoration in this (fresh) process and print its time and peak RSS as JSON."""
    torch.manual_seed(0)
    model = build_model("cplir", **spec["model"]).eval()
    x = torch.rand(1, 3, spec["size"], spec["size"])
    if spec["tile"] is None:  # whole image: refuse when the estimate exceeds the free memory, instead of swapping
        probe = torch.rand(1, 3, 64, 64)
        estimate = PEAK_PER_LARGEST_ACTIVATION * largest_activation_bytes(model, probe) / 64 ** 2 * spec["size"] ** 2
        if estimate > 0.8 * available_memory(torch.device("cpu")):
            print(json.dumps({"skipped": f"estimated {estimate / 2 ** 30:.1f} GB > 80% of the free memory"}))
            return
    restorer = Restorer(model, tile=spec["tile"], tile_overlap=spec["overlap"], precision=spec["precision"],
                        device="cpu")
    before = _rss_gb()
    start = time.perf_counter()
    restorer.restore_tensor(x)
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_gb": _rss_gb(), "before_gb": before}))


def run_child(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        return {"skipped": f"failed with status {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_section(s: dict) -> None:
    print(f"\n## Peak memory and time: {s['size']}x{s['size']}, CPL model "
          f"{'tiny' if s['model'] else 'published size'}, fp32, subprocess per variant")
    for label, tile in ((f"tiled {s['tile']}, overlap {s['overlap']}", s["tile"]), ("whole image", None)):
        r = run_child({"model": s["model"], "size": s["size"], "tile": tile, "overlap": s["overlap"],
                       "precision": "fp32"})
        if "skipped" in r:
            print(f"{label:28s} skipped: {r['skipped']}")
            continue
        goal = f" (goal < {GOAL_PEAK_GB} GB: {'met' if r['peak_gb'] < GOAL_PEAK_GB else 'NOT met'})" if tile else ""
        print(f"{label:28s} {r['seconds']:8.1f} s  peak RSS {r['peak_gb']:.2f} GB "
              f"(model and input loaded: {r['before_gb']:.2f} GB){goal}")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def precision_and_ensemble_section(s: dict) -> None:
    torch.manual_seed(0)
    model = build_model("cplir", **s["model"]).eval()
    x = torch.rand(1, 3, s["small"], s["small"])
    restorers = {p: Restorer(model, precision=p, device="cpu") for p in ("fp32", "bf16")}
    times = interleaved_best({p: (lambda r=r: r.restore_tensor(x)) for p, r in restorers.items()}, repeats=3)
    outputs = {p: r.restore_tensor(x).image for p, r in restorers.items()}
    speedup = times["fp32"] / times["bf16"]
    print(f"\n## Precision: {s['small']}x{s['small']}, whole image, best of 3")
    print(f"fp32 {times['fp32']:.2f} s, bf16 {times['bf16']:.2f} s: bf16 speed-up {speedup:.2f}x "
          f"(goal >= {GOAL_BF16_SPEEDUP}x: {'met' if speedup >= GOAL_BF16_SPEEDUP else 'NOT met'}); "
          f"PSNR(bf16 output, fp32 output) {psnr(outputs['bf16'], outputs['fp32']):.1f} dB")
    ensemble = Restorer(model, ensemble=True, device="cpu")
    t = interleaved_best({"plain": lambda: restorers["fp32"].restore_tensor(x),
                          "ensemble": lambda: ensemble.restore_tensor(x)}, repeats=1)
    print(f"\n## x8 self-ensemble: {s['small']}x{s['small']}, fp32")
    print(f"plain {t['plain']:.2f} s, ensemble {t['ensemble']:.2f} s: {t['ensemble'] / t['plain']:.2f}x")


def demo_model(quick: bool):
    """The newest checkpoint of the demo's CPL model (outputs/demo), else (with --quick) an untrained tiny model."""
    from cplir.models import load_model

    found = sorted(Path("outputs/demo").glob("embedded-three-task-cpl/checkpoints/iter_*.pth"))
    if found:
        return load_model(found[-1]), f"demo model {found[-1]}"
    if quick:
        torch.manual_seed(0)
        return build_model("cplir", **TINY).eval(), "UNTRAINED tiny model (no demo run found)"
    return None, "no demo checkpoint under outputs/demo: run `make demo` first"


def tiling_psnr_section(s: dict, quick: bool) -> None:
    from cplir.data.benchmarks import load_benchmark
    from cplir.data.datasets import PairedDataset

    model, label = demo_model(quick)
    print(f"\n## Tiling and routing: PSNR against ground truth, embedded three-task test scenes, {label}")
    if model is None:
        return
    records = load_benchmark("embedded", "embedded", "test", variant="three_task", max_size=256 if quick else None)
    if quick:  # one scene per task
        records = {task: recs[:1] for task, recs in records.items()}
    data = PairedDataset(records)
    variants = {"whole": Restorer(model, device="cpu")}
    for routing in ("global", "tile"):
        variants[f"tiled {routing}"] = Restorer(model, tile=s["psnr_tile"], tile_overlap=s["psnr_overlap"],
                                                routing=routing, device="cpu")
    sums = {task: {name: 0.0 for name in ["input", *variants]} for task in data.tasks}
    counts = {task: 0 for task in data.tasks}
    for sample in data:
        lq, gt = sample["lq"][None], sample["gt"][None]
        sums[sample["task"]]["input"] += psnr(lq, gt)
        for name, restorer in variants.items():
            sums[sample["task"]][name] += psnr(restorer.restore_tensor(lq).image, gt)
        counts[sample["task"]] += 1
    names = ["input", *variants]
    print(f"tile {s['psnr_tile']}, overlap {s['psnr_overlap']}; PSNR in dB (RGB, data range 1)")
    print(f"{'task':12s}" + "".join(f"{n:>14s}" for n in names))
    for task in data.tasks:
        print(f"{task:12s}" + "".join(f"{sums[task][n] / counts[task]:14.2f}" for n in names))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and sizes (checks the script)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    s = settings(args.quick)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    memory_section(s)
    precision_and_ensemble_section(s)
    tiling_psnr_section(s, args.quick)


if __name__ == "__main__":
    main()
