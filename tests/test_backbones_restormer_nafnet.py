"""Restormer and NAFNet: state-dict layout, outputs and gradients equal to the published implementations."""

import pytest
import torch

from cplir.errors import ConfigError, InputSizeError
from cplir.models import build_model
from golden import fill_deterministic, load_golden, state_shapes

GOLDEN = {"restormer_tiny": "restormer", "restormer_dual_pixel": "restormer", "nafnet_tiny": "nafnet"}

# Measured from the published code (swz30/Restormer restormer_arch.py, megvii-research/NAFNet NAFNet_arch.py).
PUBLISHED_COUNTS = [
    ("restormer", {}, 26_126_644),
    ("restormer", {"num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1}, 7_009_199),
    ("restormer", {"inp_channels": 6, "dual_pixel_task": True}, 26_132_548),
    ("nafnet", {"width": 32, "middle_blk_num": 1, "enc_blk_nums": [1, 1, 1, 28], "dec_blk_nums": [1, 1, 1, 1]},
     17_111_907),
    ("nafnet", {"width": 64, "middle_blk_num": 1, "enc_blk_nums": [1, 1, 1, 28], "dec_blk_nums": [1, 1, 1, 1]},
     67_888_835),
    ("nafnet", {"width": 32, "middle_blk_num": 12, "enc_blk_nums": [2, 2, 4, 8], "dec_blk_nums": [2, 2, 2, 2]},
     29_159_715),
]


def golden_model(name):
    ref = load_golden(name)
    model = build_model(GOLDEN[name], **ref["kwargs"])
    assert state_shapes(model) == ref["shapes"]  # the published keys, each with the published shape
    return fill_deterministic(model).eval(), ref


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_output_equals_published(name):
    model, ref = golden_model(name)
    with torch.no_grad():
        out = model(ref["input"])
    assert out.shape == ref["output"].shape
    torch.testing.assert_close(out, ref["output"], atol=1e-5, rtol=1e-4)


def test_nafnet_gradients_equal_published_custom_autograd():
    # The published LayerNorm2d has a hand-written backward; ours relies on autograd of the same formula.
    model, ref = golden_model("nafnet_tiny")
    x = ref["input"].clone().requires_grad_(True)
    (model(x) * ref["output_weights"]).sum().backward()
    torch.testing.assert_close(x.grad, ref["input_grad"], atol=1e-5, rtol=1e-4)
    params = dict(model.named_parameters())
    assert ref["param_grads"]
    for key, grad in ref["param_grads"].items():
        torch.testing.assert_close(params[key].grad, grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name, kwargs, expected", PUBLISHED_COUNTS)
def test_published_parameter_counts(name, kwargs, expected):
    with torch.device("meta"):  # shapes only: the 68M-parameter model costs no memory or init time
        model = build_model(name, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_defaults_are_the_published_configurations():
    with torch.device("meta"):
        assert len(build_model("restormer").state_dict()) == 494
        assert sum(p.numel() for p in build_model("nafnet").parameters()) == 17_111_907  # GoPro width 32


def test_nafnet_takes_any_size_and_pads_with_zeros_inside():
    model = fill_deterministic(build_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1, 1],
                                           dec_blk_nums=[1, 1])).eval()
    assert model.padder_size == 4 and model.size_multiple == 1
    x = torch.rand(1, 3, 10, 7, generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (0, 1, 0, 2))
    with torch.no_grad():
        out, out_padded = model(x), model(padded)
    assert out.shape == x.shape
    # zero padding is the published behaviour: the odd-size result is the padded result cropped
    torch.testing.assert_close(out - x, (out_padded - padded)[..., :10, :7])


def test_restormer_refuses_sizes_not_multiple_of_8():
    model = build_model("restormer", dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 2, 2])
    assert model.size_multiple == 8 and model.scale == 1
    with pytest.raises(InputSizeError, match="pad_to_multiple"):
        model(torch.rand(1, 3, 12, 16))


@pytest.mark.parametrize("name, kwargs, words", [
    ("nafnet", {"enc_blk_nums": [1, 1], "dec_blk_nums": [1]}, "as many decoder as encoder levels"),
    ("restormer", {"num_blocks": [1, 1, 1]}, "one entry per level"),
    ("restormer", {"dim": 7}, "even"),
])
def test_bad_architecture_arguments_are_config_errors(name, kwargs, words):
    with pytest.raises(ConfigError, match=words):
        build_model(name, **kwargs)
