"""Restormer and NAFNet: gradients equal to the published implementation, parameter counts, sizes, where their
prompts sit, argument checks. Outputs, prompts, negatives and CPR training of every decoder-prompted backbone:
tests/test_decoder_prompts.py."""

import pytest
import torch

from cplir.errors import ConfigError, InputSizeError
from cplir.models import build_model, check_supports_cpr
from golden import fill_deterministic
from prompted_backbones import TINY, golden_model, tiny

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


def test_nafnet_gradients_equal_published_custom_autograd():
    # The published LayerNorm2d has a hand-written backward; ours relies on autograd of the same formula.
    model, ref = golden_model("nafnet_tiny", "nafnet")
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


# --- prompts in the decoder ------------------------------------------------------------------------------------
def test_restormer_prompts_sit_where_promptir_has_them():
    # At the defaults the prompt blocks and their fusion blocks have PromptIR's published sizes; only the 1x1
    # reduction of the latent differs (back to 8·dim here, to 4·dim in PromptIR).
    with torch.device("meta"):
        model = build_model("restormer", prompt="sparse")
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert model.prompt_names == ("prompt3", "prompt2", "prompt1")
    assert [count(getattr(model, f"prompt{i}")) for i in (1, 2, 3)] == [1_348_069, 803_781, 1_333_125]
    assert [count(getattr(model, f"fuse{i}").block) for i in (1, 2, 3)] == [319_014, 1_251_802, 5_991_652]
    assert [count(getattr(model, f"fuse{i}").reduce) for i in (1, 2, 3)] == [15_360, 61_440, 704 * 384]
    assert count(model) == 37_521_223


def test_nafnet_prompt_levels():
    model = tiny("nafnet", "sparse")
    assert model.prompt_names == ("prompt3", "prompt2", "prompt1")  # one before each upsampling, deepest first
    # prompt{i} reads width·2^i channels; default width half of that; sizes as given
    assert [tuple(getattr(model, f"prompt{i}").prompt_param.shape[2:]) for i in (1, 2, 3)] == \
        [(8, 8, 8), (16, 4, 4), (32, 2, 2)]
    with torch.device("meta"):
        default = build_model("nafnet", prompt="dense")
    assert [tuple(getattr(default, f"prompt{i}").prompt_param.shape[1:]) for i in (1, 2, 3, 4)] == \
        [(5, 32, 64, 64), (5, 64, 32, 32), (5, 128, 16, 16), (5, 256, 8, 8)]


def test_prompted_nafnet_still_takes_any_size():
    model = tiny("nafnet", "sparse")
    x = torch.rand(1, 3, 13, 19)
    with torch.no_grad():
        assert model(x).shape == x.shape
        assert model(x, mismatch=torch.Generator().manual_seed(0)).shape == x.shape


@pytest.mark.parametrize("name, kwargs, words", [
    ("nafnet", {"prompt": "sparce"}, "prompt must be None"),
    ("nafnet", {"prompt": "sparse", "prompt_sizes": [8, 4]}, "one entry per decoder level"),
    ("restormer", {"prompt": "dense", "prompt_dims": [8, 8]}, "one entry per prompt block"),
])
def test_bad_prompt_arguments_are_config_errors(name, kwargs, words):
    with pytest.raises(ConfigError, match=words):
        build_model(name, **dict(TINY[name], **kwargs))


def test_cpr_refuses_dense_prompts_and_plain_backbones():
    for args in ({"prompt": "dense"}, {}):
        with pytest.raises(ConfigError, match="Sparse Prompt Modules"):
            check_supports_cpr(build_model("nafnet", **dict(TINY["nafnet"], **args)))


@pytest.mark.parametrize("variant", ["exact", "fast"])
def test_nafnet_local_equals_the_published_test_time_local_converter(variant):
    """NAFNetLocal (train size 16, so a 41x37 input exceeds every pool's window): the published outputs for the
    exact and the fast local means, the published window sizes, and outputs unlike the global-mean NAFNet's."""
    from golden import load_golden

    ref = load_golden("nafnet_local_tiny")[variant]
    kwargs = dict(ref["kwargs"])
    model = fill_deterministic(build_model("nafnet_local", **kwargs)).eval()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == ref["shapes"]
    pools = [m for m in model.modules() if type(m).__name__ == "LocalAvgPool2d"]
    assert [list(p.kernel_size) for p in pools] == [list(k) for k in ref["kernels"]]
    kwargs.pop("train_size"), kwargs.pop("fast_imp")
    plain = build_model("nafnet", **kwargs).eval()
    plain.load_state_dict(model.state_dict())  # the same keys: NAFNet checkpoints load into NAFNetLocal
    with torch.no_grad():
        out, out_global = model(ref["input"]), plain(ref["input"])
    torch.testing.assert_close(out, ref["output"], atol=1e-5, rtol=1e-4)
    # the global-mean network misses the reference by far more than the tolerance above (6e-4 against 1e-5 here:
    # the deterministic weights keep the attention branch small), so the check tells local from global means
    assert (out_global - ref["output"]).abs().max() > 1e-4


def test_nafnet_local_is_the_global_network_up_to_its_training_size():
    local = fill_deterministic(build_model("nafnet_local", width=8, middle_blk_num=1, enc_blk_nums=[1, 1],
                                           dec_blk_nums=[1, 1], train_size=[1, 3, 32, 32])).eval()
    plain = build_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]).eval()
    plain.load_state_dict(local.state_dict())
    x = torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(1))  # within 1.5x the training size
    with torch.no_grad():
        torch.testing.assert_close(local(x), plain(x))
    with pytest.raises(ConfigError, match="train_size"):
        build_model("nafnet_local", width=8, enc_blk_nums=[1], dec_blk_nums=[1], train_size=[64, 64])


def test_nafnet_local_refuses_onnx_export_in_one_line(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from cplir.errors import CheckpointError
    from cplir.models.onnx_export import export_onnx

    model = build_model("nafnet_local", width=8, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1],
                        train_size=[1, 3, 16, 16])
    with pytest.raises(CheckpointError, match="build model nafnet"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_nafnet_local_arguments_are_nafnets_plus_its_own():
    """Argument checks and spec comparison see through NAFNetLocal's **kwargs to NAFNet's constructor."""
    from cplir.models.registry import resolved_arguments

    local = resolved_arguments("nafnet_local", {})
    assert local == resolved_arguments("nafnet_local", {"width": 32, "train_size": [1, 3, 256, 256]})
    assert {k: v for k, v in local.items() if k not in ("train_size", "fast_imp")} == resolved_arguments("nafnet", {})
    with pytest.raises(ConfigError, match="width must be a whole number"):
        build_model("nafnet_local", width="x")
