"""Decoder-prompted backbones with and without CPL: forward time and training-step time, ratios in one run.

Per backbone three variants: the published network (``prompt=None``, L1 loss), the network with Sparse Prompt
Modules in its decoder (``prompt="sparse"``, L1) and CPL (sparse prompts + CPR with m=4 negatives decoded from the
shared encoder features, one decoder pass per negative as the trainer does on the CPU; random-weight VGG19, the
same cost as the ImageNet one). Forward: batch 1, ``torch.no_grad()``, eval mode. Figures go to
docs/benchmarks.md; ``--quick`` only checks that the script runs (tiny models, 32x32, one repeat).
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_step import make_step  # noqa: E402
from timing import interleaved_best  # noqa: E402

from cplir.losses import ContrastivePromptLoss  # noqa: E402
from cplir.models import build_model  # noqa: E402

PRESETS = {
    # published defaults (NAFNet: GoPro width 32; MambaIR: MambaIRUNet, real-denoising configuration)
    "default": {"restormer": {}, "nafnet": {}, "drsformer": {}, "fsnet": {}, "mambair": {}},
    "tiny": {"restormer": dict(dim=16, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1),
             "nafnet": dict(width=16, enc_blk_nums=(1, 1, 1), dec_blk_nums=(1, 1, 1)),
             "drsformer": dict(dim=16, num_blocks=(1, 1, 1, 1), heads=(1, 2, 2, 4)),
             "fsnet": dict(num_res=4, base_channel=16),
             "mambair": dict(dim=32, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, mlp_ratio=1.0, d_state=4)},
}
VARIANTS = {"plain": None, "spm": "sparse", "cpl": "sparse"}


def count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def forward_times(name, arch, x, repeats):
    nets = {v: build_model(name, prompt=VARIANTS[v], **arch).eval() for v in ("plain", "spm")}

    def run(net):
        def fn():
            with torch.no_grad():
                net(x)
        return fn

    return interleaved_best({v: run(net) for v, net in nets.items()}, repeats=repeats), nets


def step_times(name, arch, batch, size, repeats):
    torch.manual_seed(0)
    lq, gt = torch.rand(batch, 3, size, size), torch.rand(batch, 3, size, size)
    cpr = ContrastivePromptLoss(vgg="random")
    steps = {"plain": make_step(name, dict(arch, prompt=None)),
             "spm": make_step(name, dict(arch, prompt="sparse")),
             "cpl": make_step(name, dict(arch, prompt="sparse"), cpr, per_pass=1)}
    return interleaved_best({v: (lambda s=s: s(lq, gt)) for v, s in steps.items()}, repeats=repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=tuple(PRESETS), default="default")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1, help="training-step batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", choices=tuple(PRESETS["default"]), default=tuple(PRESETS["default"]))
    parser.add_argument("--quick", action="store_true", help="tiny models, 32x32, one repeat: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.preset, args.size, args.repeats = "tiny", 32, 1
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.preset} configs; forward 1x3x"
          f"{args.size}x{args.size}, step batch {args.batch}; CPR m=4, VGG19 relu1_1..relu5_1 (random weights)")
    for name in args.models:
        arch = PRESETS[args.preset][name]
        fwd, nets = forward_times(name, arch, x, args.repeats)
        # FSNet's dynamic filters hold a BatchNorm over one value per sample: it trains with batches of 2 or more
        batch = max(args.batch, 2) if name == "fsnet" else args.batch
        step = step_times(name, arch, batch, args.size, args.repeats)
        print(f"{name:9s} params {count(nets['plain']):>11,d} -> {count(nets['spm']):>11,d} with prompts")
        print(f"  forward   plain {fwd['plain'] * 1e3:8.1f} ms  +SPM {fwd['spm'] * 1e3:8.1f} ms  "
              f"ratio {fwd['spm'] / fwd['plain']:.2f}")
        print(f"  train (batch {batch}) plain {step['plain'] * 1e3:8.1f} ms  +SPM {step['spm'] * 1e3:8.1f} ms "
              f"({step['spm'] / step['plain']:.2f}x)  +CPL {step['cpl'] * 1e3:8.1f} ms "
              f"({step['cpl'] / step['plain']:.2f}x)")


if __name__ == "__main__":
    main()
