"""Training-step time of PromptIR, PromptIR+SPM and PromptIR+CPL (m=4) at one config and batch, with the
naive negatives (m full forward passes) and the batched ones (decoded from the shared encoder features, one
decoder pass per negative, as the trainer does on the CPU, or all m in one pass, as on CUDA) side by side.

Goals (issue 4): a CPL step at most 2.0x a PromptIR step; batched negatives at most 0.85x the naive ones.
The CPR perceptual network is a random-weight VGG19 (same cost as the ImageNet one).
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_best  # noqa: E402

from cplir.engine.prompt_negatives import (draw_negative_choices, prompt_negatives_batched,  # noqa: E402
                                           prompt_negatives_naive)
from cplir.losses import ContrastivePromptLoss, l1_loss  # noqa: E402
from cplir.models import build_model  # noqa: E402

PRESETS = {"tiny": dict(dim=16, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, prompt_sizes=(16, 8, 4)),
           "default": {}}


def make_step(name, arch, cpr=None, per_pass=None, m=4):
    """``per_pass``: None for naive negatives, else negatives per decoder pass (0: all m)."""
    torch.manual_seed(0)
    net = build_model(name, **arch)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)

    def step(lq, gt):
        restored, feats = net(lq, return_features=True)
        loss = l1_loss(restored, gt)
        if cpr is not None:
            draws = draw_negative_choices(m, len(net.prompt_names), lq.shape[0], gen)
            negatives = (prompt_negatives_naive(net, lq, draws) if per_pass is None
                         else prompt_negatives_batched(net, feats, lq, draws, per_pass))
            loss = loss + cpr(restored, gt, negatives)["cpr"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--preset", choices=tuple(PRESETS), default="tiny",
                        help="model size: tiny (dim 16, one block per level) or the published default")
    args = parser.parse_args()
    arch = PRESETS[args.preset]
    torch.manual_seed(0)
    lq, gt = torch.rand(args.batch, 3, args.size, args.size), torch.rand(args.batch, 3, args.size, args.size)
    cpr = ContrastivePromptLoss(vgg="random")
    steps = {
        "promptir": make_step("promptir", arch),
        "promptir+spm": make_step("cplir", arch),
        "cpl_batched": make_step("cplir", arch, cpr, per_pass=1),
        "cpl_one_pass": make_step("cplir", arch, cpr, per_pass=0),
        "cpl_naive": make_step("cplir", arch, cpr, per_pass=None),
    }
    times = interleaved_best({k: (lambda s=s: s(lq, gt)) for k, s in steps.items()}, repeats=args.repeats)

    # the negatives alone, both paths, same draws
    net = build_model("cplir", **arch)
    _, feats = net(lq, return_features=True)
    draws = draw_negative_choices(4, len(net.prompt_names), args.batch, torch.Generator().manual_seed(0))
    neg = interleaved_best({"batched": lambda: prompt_negatives_batched(net, feats, lq, draws, 1),
                            "one_pass": lambda: prompt_negatives_batched(net, feats, lq, draws, 0),
                            "naive": lambda: prompt_negatives_naive(net, lq, draws)}, repeats=args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.preset} config {arch}; "
          f"batch {args.batch} x 3 x {args.size} x {args.size}; CPR m=4, VGG19 relu1_1..relu5_1")
    for k, v in times.items():
        print(f"  step {k:14s} {v * 1e3:8.1f} ms   ({v / times['promptir']:.2f}x promptir)")
    print(f"  negatives only: batched (1 per pass) {neg['batched'] * 1e3:.1f} ms, one pass "
          f"{neg['one_pass'] * 1e3:.1f} ms, naive {neg['naive'] * 1e3:.1f} ms; batched/naive "
          f"{neg['batched'] / neg['naive']:.2f} (goal <= 0.85), one pass/naive {neg['one_pass'] / neg['naive']:.2f}")
    print(f"  CPL step (batched) / PromptIR step = {times['cpl_batched'] / times['promptir']:.2f} (goal <= 2.0)")
    print(f"  CPL step batched / naive = {times['cpl_batched'] / times['cpl_naive']:.2f}")


if __name__ == "__main__":
    main()
