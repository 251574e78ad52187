"""MCLIR's networks with and without the SPN loss: training-step time, ratios in one run.

Per network two steps, measured in alternation: the reconstruction loss alone (L1; IDT's 1 − SSIM) and the same
plus SPN as the trainer computes it (:class:`cplir.engine.objective.SPNTerm`: K=4 negative models run without
gradient, VGG16 relu1_2/relu2_2/relu3_3 on the output and the four negatives; random VGG weights, the same cost as
the ImageNet ones). A step is forward, loss, backward, AdamW update and the bank's refresh check. Super-resolution
networks get (size / scale)² inputs and size² targets; IDT takes its ``img_size`` only, so its size is that.
Figures go to docs/benchmarks.md; ``--quick`` only checks that the script runs (tiny networks, one repeat).
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_best  # noqa: E402

from cplir.config import SPNConfig  # noqa: E402
from cplir.engine.objective import SPNTerm, StepInputs  # noqa: E402
from cplir.losses import l1_loss, ssim_loss  # noqa: E402
from cplir.models import build_model  # noqa: E402

PRESETS = {
    # the published configurations (_base/ffanet.yaml, _base/dehazeformer.yaml, ... of configs/)
    "default": {"ffanet": {"input_norm": True}, "dehazeformer_t": {"signed_range": True},
                "dehazeformer_s": {"signed_range": True}, "dehazeformer_b": {"signed_range": True}, "idt": {},
                "swinir_light_x4": {}, "edsr_baseline": {"upscale": 4}},
    # small versions of each, as the embedded demos use
    "tiny": {"ffanet": {"blocks": 1, "input_norm": True},
             "dehazeformer_t": {"depths": (1, 1, 1, 1, 1), "signed_range": True},
             "dehazeformer_s": {"depths": (2, 2, 2, 1, 1), "signed_range": True},
             "dehazeformer_b": {"depths": (4, 4, 4, 2, 2), "signed_range": True},
             "idt": {"img_size": 64, "embed_dim": 8},
             "swinir_light_x4": {"embed_dim": 12, "depths": (2, 2), "num_heads": (2, 2)},
             "edsr_baseline": {"upscale": 4, "num_feat": 32, "num_block": 4}},
}
RECONSTRUCTION = {"idt": ssim_loss}  # IDT's published loss; every other network trains with L1


def make_step(name, arch, spn: bool):
    """One training step of ``name``, with or without SPN (published settings, random VGG16)."""
    torch.manual_seed(0)
    net = build_model(name, **arch)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    reconstruction = RECONSTRUCTION.get(name, l1_loss)
    term = SPNTerm(SPNConfig(enabled=True, vgg_weights="random"), net, seed=1) if spn else None
    iteration = 0

    def step(lq, gt):
        nonlocal iteration
        restored = net(lq)
        loss = reconstruction(restored, gt)
        if term is not None:
            loss = loss + term(StepInputs(lq, gt, restored, None, net, iteration, torch.Generator()))["spn"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        iteration += 1
        if term is not None:
            term.after_step(iteration, net)
    return step, net


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=tuple(PRESETS), default="default")
    parser.add_argument("--size", type=int, default=64, help="target (HR) crop side")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", choices=tuple(PRESETS["default"]), default=tuple(PRESETS["default"]))
    parser.add_argument("--quick", action="store_true", help="tiny networks, 32x32 (IDT 64x64), batch 1, one "
                                                             "repeat, no warm-up: a smoke test")
    args = parser.parse_args()
    warmup = 1
    if args.quick:
        args.preset, args.size, args.batch, args.repeats, warmup = "tiny", 32, 1, 1, 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.preset} configs; batch {args.batch}, "
          f"target {args.size}x{args.size} (IDT: its img_size); SPN K=4, VGG16 relu1_2..relu3_3 (random weights)")
    for name in args.models:
        arch = PRESETS[args.preset][name]
        (plain, net), (with_spn, _) = make_step(name, arch, False), make_step(name, arch, True)
        size = getattr(net, "img_size", args.size)
        generator = torch.Generator().manual_seed(0)
        gt = torch.rand(args.batch, 3, size, size, generator=generator)
        lq = torch.rand(args.batch, 3, size // net.scale, size // net.scale, generator=generator)
        times = interleaved_best({"plain": lambda: plain(lq, gt), "spn": lambda: with_spn(lq, gt)},
                                 repeats=args.repeats, warmup=warmup)
        params = sum(p.numel() for p in net.parameters())
        print(f"{name:16s} params {params:>11,d}  input {size // net.scale}x{size // net.scale}  "
              f"step {times['plain'] * 1e3:9.1f} ms  +SPN {times['spn'] * 1e3:9.1f} ms  "
              f"ratio {times['spn'] / times['plain']:.2f}")


if __name__ == "__main__":
    main()
