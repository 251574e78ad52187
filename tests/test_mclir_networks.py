"""MCLIR's networks (FFA-Net, DehazeFormer, SwinIR, IDT) and EDSR: layout and numerics of the published code.

Golden files (tests/golden/README.md) hold the published implementation's state-dict shapes and its output for
a fixed input under deterministic weights; parameter counts are those of the published default configurations,
measured by building the published classes.
"""

import pytest
import torch

from cplir.errors import ConfigError, InputSizeError
from cplir.models import PromptedBackbone, build_model
from cplir.models.drop_path import DropPath
from cplir.models.windows import relative_position_index, window_partition, window_reverse
from golden import fill_deterministic, load_golden, state_shapes

GOLDEN_CASES = [  # (golden file, registered model)
    ("ffanet", "ffanet"),
    ("edsr_x3", "edsr_baseline"),
    ("edsr_x4", "edsr_baseline"),
    ("swinir_light_x4", "swinir"),  # input at img_size: the stored shift masks
    ("swinir_classical_x3", "swinir"),  # 3conv residuals, absolute position embedding
    ("swinir_real_x4", "swinir"),  # padded to 12x16, not img_size 12x12: shift masks computed on the fly
    ("swinir_gray_dn", "swinir"),  # one channel, scale 1, window shrunk to the input
    ("dehazeformer_dwconv", "dehazeformer"),  # input not a multiple of 4 or of the window
    ("dehazeformer_conv", "dehazeformer"),
    ("idt", "idt"),
]


@pytest.mark.parametrize("golden_name, model_name", GOLDEN_CASES)
def test_matches_published_implementation(golden_name, model_name):
    ref = load_golden(golden_name)
    model = build_model(model_name, **ref["kwargs"]).eval()
    assert state_shapes(model) == ref["shapes"]
    fill_deterministic(model)
    with torch.no_grad():
        out = model(ref["input"])
    h, w = ref["input"].shape[-2:]
    assert out.shape[-2:] == (h * model.scale, w * model.scale)
    torch.testing.assert_close(out, ref["output"], atol=1e-5, rtol=1e-4)


# Parameter counts of the published default configurations, measured from the published classes.
PUBLISHED_COUNTS = [
    ("ffanet", {}, 4_455_913),  # MCLIR's FFANet: gps 3, blocks 19
    ("edsr_baseline", {"upscale": 2}, 1_369_859),
    ("edsr_baseline", {"upscale": 3}, 1_554_499),
    ("edsr_baseline", {"upscale": 4}, 1_517_571),
    ("swinir_light_x4", {}, 929_628),
    ("swinir_light_x4", {"upscale": 2}, 910_152),
    ("dehazeformer_t", {}, 687_404),
    ("dehazeformer_s", {}, 1_284_884),
    ("dehazeformer_b", {}, 2_517_612),
    ("dehazeformer_m", {}, 4_635_952),
    ("dehazeformer_l", {}, 25_451_652),
    ("idt", {}, 16_416_463),
]


@pytest.mark.parametrize("name, kwargs, expected", PUBLISHED_COUNTS)
def test_published_parameter_count(name, kwargs, expected):
    with torch.device("meta"):  # counts only: no memory, no initialisation work
        model = build_model(name, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_swinir_light_keeps_the_published_buffers():
    with torch.device("meta"):
        state = build_model("swinir_light_x4").state_dict()
    assert len(state) == 366
    # Shifted blocks (odd indices) carry the mask of the 64x64 training patch: 64 windows of 8x8 tokens.
    assert tuple(state["layers.0.residual_group.blocks.1.attn_mask"].shape) == (64, 64, 64)
    assert "layers.0.residual_group.blocks.0.attn_mask" not in state


@pytest.mark.parametrize("name, kwargs", [("edsr_baseline", {"upscale": 2, "num_block": 1, "num_feat": 8}),
                                          ("swinir_light_x4", {"embed_dim": 6, "depths": (2,), "num_heads": (2,)})])
def test_super_resolution_output_is_scale_times_input(name, kwargs):
    model = build_model(name, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 10, 13))
    assert out.shape == (2, 3, 10 * model.scale, 13 * model.scale)


def test_published_input_conventions_wrap_the_same_weights():
    """FFA-Net's input normalisation and DehazeFormer's [-1, 1] range, built in, equal the published pipelines
    around the plain network (same keys, so released weights load either way)."""
    x = torch.rand(1, 3, 12, 10)
    torch.manual_seed(0)
    plain = build_model("ffanet", blocks=1).eval()
    inside = build_model("ffanet", blocks=1, input_norm=True).eval()
    inside.load_state_dict(plain.state_dict())
    mean, std = torch.tensor([0.64, 0.6, 0.58]).view(1, 3, 1, 1), torch.tensor([0.14, 0.15, 0.152]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(inside(x), plain((x - mean) / std))
    small, x = {"depths": (1, 1, 1, 1, 1), "window_size": 4}, torch.rand(1, 3, 16, 20)
    plain = build_model("dehazeformer_t", **small).eval()
    inside = build_model("dehazeformer_t", signed_range=True, **small).eval()
    inside.load_state_dict(plain.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(inside(x), (plain(2 * x - 1) + 1) / 2)


def test_plain_backbones_have_no_prompts():
    model = build_model("edsr_baseline", upscale=2, num_block=1, num_feat=8).eval()
    assert isinstance(model, PromptedBackbone) and model.prompt_names == ()
    x = torch.rand(1, 3, 6, 5)
    out, routing = model(x, return_routing=True)
    assert routing == {} and torch.equal(out, model(x))
    with pytest.raises(InputSizeError, match="no prompt blocks"):
        model(x, mismatch=torch.Generator())


def test_idt_rejects_other_sizes_with_a_clear_error():
    model = build_model("idt", img_size=64, embed_dim=8).eval()
    with pytest.raises(InputSizeError, match="64x64"):
        model(torch.rand(1, 3, 64, 72))


@pytest.mark.parametrize("name, kwargs", [("ffanet", {"gps": 2}), ("edsr_baseline", {"upscale": 5}),
                                          ("swinir", {"upsampler": "bicubic"}), ("idt", {"img_size": 192}),
                                          ("dehazeformer", {"conv_type": ("Conv", "Conv", "Conv", "Conv", "Attn")})])
def test_unsupported_configurations_raise_config_error(name, kwargs):
    with pytest.raises(ConfigError):
        build_model(name, **kwargs)


def test_drop_path_drops_whole_samples_and_keeps_the_mean():
    x = torch.ones(2000, 3, 4)
    layer = DropPath(0.25).train()
    y = layer(x)
    per_sample = y.flatten(1)
    torch.testing.assert_close(per_sample.unique(), torch.tensor([0.0, 1 / 0.75]))
    assert (per_sample == per_sample[:, :1]).all()
    assert abs(y.mean().item() - 1.0) < 0.05
    assert torch.equal(layer.eval()(x), x)


def test_window_partition_round_trip_and_position_index():
    x = torch.randn(2, 8, 12, 5)
    windows = window_partition(x, 4)
    assert windows.shape == (12, 4, 4, 5)
    assert torch.equal(windows[1], x[0, :4, 4:8])
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)
    index = relative_position_index(3, 3)
    assert index.shape == (9, 9) and index.unique().numel() == 25  # every offset of a 3x3 window, once each
    assert (index.diagonal() == 12).all()  # zero offset: the centre of the 5x5 table
    assert relative_position_index(5, 5, bound=2).max() == 8  # offsets clipped to ±1: a 3x3 table
