"""docs/extending.md done once for toy cases: a new backbone with sparse prompts and a new loss term, each
registered in one place, train through the unchanged trainer (with CPR for the backbone)."""

import pytest
import torch
from torch import nn

from cplir.engine import objective
from cplir.engine.distributed import DistInfo
from cplir.engine.objective import ObjectiveTerm, register_term
from cplir.engine.prompt_negatives import draw_negative_choices, prompt_negatives_batched, prompt_negatives_naive
from cplir.engine.run_log import read_log
from cplir.engine.trainer import Trainer, run_training
from cplir.models import PromptedBackbone, SparsePromptModule, build_model, register_model, registry
from trainer_fixtures import make_paired_tree, tiny_config

CPR = {"loss__cpr__enabled": True, "loss__cpr__vgg_weights": "random", "loss__cpr__num_negatives": 2,
       "loss__cpr__layers": ["relu1_1"], "loss__cpr__layer_weights": [1.0]}


class ToyPrompted(PromptedBackbone):
    """Two-scale conv net with a sparse prompt at each decoder scale."""

    size_multiple = 2
    shares_encoder = True
    prompt_names = ("prompt_low", "prompt_high")

    def __init__(self, width: int = 8, num_prompts: int = 4):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.down = nn.Conv2d(width, width, 2, stride=2)
        self.prompt_low = SparsePromptModule(width, num_prompts, 4, width)
        self.fuse_low = nn.Conv2d(2 * width, width, 1)
        self.up = nn.ConvTranspose2d(width, width, 2, stride=2)
        self.prompt_high = SparsePromptModule(width, num_prompts, 8, width)
        self.tail = nn.Conv2d(2 * width, 3, 3, padding=1)

    def encode(self, x):
        full = torch.relu(self.head(x))
        return full, torch.relu(self.down(full))

    def decode(self, feats, x, ctx):
        full, low = feats
        low = self.fuse_low(torch.cat([low, ctx.prompt("prompt_low", low)], 1))
        high = self.up(low) + full
        return self.tail(torch.cat([high, ctx.prompt("prompt_high", high)], 1)) + x


class MeanBrightness(ObjectiveTerm):
    """Toy loss: match the mean brightness of the target."""

    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight

    def forward(self, inputs):
        gap = (inputs.restored.mean() - inputs.gt.mean()).abs()
        return {"brightness": self.weight * gap, "brightness_gap": gap}


@pytest.fixture
def toy_backbone():
    register_model("toy_prompted")(lambda **kw: ToyPrompted(**kw))
    yield
    registry._MODELS.pop("toy_prompted")


@pytest.fixture
def toy_loss():
    register_term("brightness")(lambda section, net, cfg: MeanBrightness(section) if section > 0 else None)
    yield
    objective._TERMS.pop("brightness")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_paired_tree(tmp_path_factory.mktemp("pairs"), n=4)


def test_new_backbone_trains_with_cpr(toy_backbone, data_root, tmp_path):
    cfg = tiny_config(data_root, tmp_path, model={"name": "toy_prompted", "args": {"width": 8}}, **CPR,
                      train__iterations=2, train__val_every=0)
    run_training(cfg, DistInfo(), progress=False)
    logged = read_log(cfg.run_dir, "train")
    assert [r["iteration"] for r in logged] == [1, 2]
    assert all(r["cpr_neg"] > 0 for r in logged)  # the mismatched prompts change the toy's output


def test_new_backbone_batched_negatives_equal_naive(toy_backbone):
    torch.manual_seed(0)
    net = build_model("toy_prompted")
    x = torch.rand(3, 3, 8, 12)
    draws = draw_negative_choices(3, 2, 3, torch.Generator().manual_seed(1))
    _, feats = net(x, return_features=True)
    torch.testing.assert_close(prompt_negatives_batched(net, feats, x, draws),
                               prompt_negatives_naive(net, x, draws), rtol=1e-5, atol=1e-6)


def test_new_loss_term_is_summed_and_logged(toy_loss, data_root, tmp_path):
    cfg = tiny_config(data_root, tmp_path, train__iterations=2, train__val_every=0)
    object.__setattr__(cfg.loss, "brightness", 0.5)  # the config section docs/extending.md step 3 adds
    trainer = Trainer(cfg, DistInfo(), progress=False)
    assert list(trainer.objective) == ["l1", "brightness"]
    batch = next(trainer.batches())
    logged = trainer.training_step(batch["lq"], batch["gt"])
    assert logged["brightness"] == pytest.approx(0.5 * logged["brightness_gap"])
    assert logged["loss"] == pytest.approx(logged["l1"] + logged["brightness"], rel=1e-6)
