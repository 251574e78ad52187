"""Forward time of PromptIR and PromptIR+SPM (CPL) at 1x3x128x128, default and tiny configurations."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_best  # noqa: E402

from cplir.models import build_model  # noqa: E402

TINY = dict(dim=16, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1)


def main():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 128, 128)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {tuple(x.shape)}")
    for label, kwargs, repeats in (("default", {}, 5), ("tiny", TINY, 20)):
        models = {name: build_model(name, **kwargs).eval() for name in ("promptir", "cplir")}

        def forward(model):
            def run():
                with torch.no_grad():
                    model(x)
            return run

        times = interleaved_best({n: forward(m) for n, m in models.items()}, repeats=repeats)
        params = sum(p.numel() for p in models["promptir"].parameters())
        print(f"{label:8s} params {params:>11,d}  promptir {times['promptir'] * 1e3:8.1f} ms  "
              f"cplir {times['cplir'] * 1e3:8.1f} ms  ratio cplir/promptir {times['cplir'] / times['promptir']:.3f}")


if __name__ == "__main__":
    main()
