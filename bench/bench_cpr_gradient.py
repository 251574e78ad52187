"""How much CPR moves the network: the ratio of the CPR gradient norm to the L1 gradient norm, per feature space.

At the embedded demo setting (configs/embedded-three-task-cpl.yaml: tiny CPL model, batch 4, 64×64 crops, m = 4
negatives, α from the config), for a few training batches, the gradients with respect to the network's parameters
of α·L_pos, α·L_neg, the CPR term α·(L_pos − L_neg) and the L1 term, and the ratios of their norms, for each
``loss.cpr.features``: the random VGG19 of the demo (``vgg``, paper form, and with the code form's unit-length
channel vectors, ``vgg+channel_norm``), ``vgg_standardized`` and ``pyramid``. ``--checkpoint`` measures a trained
model (e.g. the demo's last checkpoint) instead of the initial weights. Figures: docs/benchmarks.md.
"""

import argparse
import dataclasses
from pathlib import Path

import torch

from cplir.config import load_config
from cplir.data.benchmarks import load_benchmark
from cplir.data.datasets import TrainingMix, build_train_loader, default_repeats
from cplir.engine.checkpoint import load_training_checkpoint
from cplir.engine.objective import CPRTerm, StepInputs
from cplir.losses import l1_loss
from cplir.models import build_model, load_weights

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "embedded-three-task-cpl.yaml"
VARIANTS = {"vgg": {"features": "vgg"}, "vgg+channel_norm": {"features": "vgg", "channel_norm": True},
            "vgg_standardized": {"features": "vgg_standardized"}, "pyramid": {"features": "pyramid"}}


def grad_vector(loss: torch.Tensor, params) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--alpha", type=float, help="α (default: the config's)")
    parser.add_argument("--checkpoint", help="training checkpoint whose model weights to measure")
    parser.add_argument("--quick", action="store_true", help="one batch of 32x32 crops: checks that it runs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    overrides = ["data.crop_size=32"] if args.quick else []
    cfg = load_config(CONFIG, overrides + ([f"loss.cpr.alpha={args.alpha}"] if args.alpha else []))
    torch.manual_seed(cfg.seed)
    net = build_model(cfg.model.name, **cfg.model.args)
    if args.checkpoint:
        load_weights(net, load_training_checkpoint(args.checkpoint)["model"])
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    d = cfg.data
    records = load_benchmark(d.train.benchmark, d.train.root, d.train.split, **d.train.options)
    mix = TrainingMix(records, default_repeats(d.train.benchmark, records), d.crop_size, augment=True, seed=cfg.seed)
    loader = build_train_loader(mix, d.batch_size, 0, cfg.seed)
    loader.sampler.set_epoch(0)
    terms = {name: CPRTerm(dataclasses.replace(cfg.loss.cpr, **change), "cpu") for name, change in VARIANTS.items()}
    print(f"alpha {cfg.loss.cpr.alpha}, batch {d.batch_size}, crop {d.crop_size}, "
          f"weights {'of ' + args.checkpoint if args.checkpoint else 'at initialisation'}")
    print(f"{'batch':>5}  {'features':<17} {'L1':>7} {'L_pos':>9} {'L_neg':>9} "
          f"{'|g_cpr|/|g_l1|':>15} {'|g_pos|/|g_l1|':>15} {'|g_neg|/|g_l1|':>15}")
    for index, batch in zip(range(1 if args.quick else args.batches), loader):
        lq, gt = batch["lq"], batch["gt"]
        restored, feats = net(lq, return_features=True)
        l1 = l1_loss(restored, gt)
        g_l1 = grad_vector(l1, params).norm()
        for name, term in terms.items():
            generator = torch.Generator().manual_seed(index)  # the same negatives for every feature space
            inputs = StepInputs(lq, gt, restored, feats, net, index, generator)
            negatives = term.negatives(inputs)
            out = term.loss(restored, gt, negatives)
            alpha = term.loss.alpha
            g_pos, g_neg = grad_vector(alpha * out["pos"], params), grad_vector(alpha * out["neg"], params)
            print(f"{index:>5}  {name:<17} {l1.item():>7.4f} {out['pos'].item():>9.3g} {out['neg'].item():>9.3g} "
                  f"{(g_pos - g_neg).norm() / g_l1:>15.3g} {g_pos.norm() / g_l1:>15.3g} "
                  f"{g_neg.norm() / g_l1:>15.3g}", flush=True)


if __name__ == "__main__":
    main()
