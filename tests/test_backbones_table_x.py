"""DRSformer, FSNet and MambaIR (CPL Table X): FSNet's multi-scale outputs, parameter counts of the published
configurations, the plain-PyTorch selective scan, where the prompts sit, argument checks. Outputs, prompts,
negatives and CPR training of every decoder-prompted backbone: tests/test_decoder_prompts.py."""

import pytest
import torch
import torch.nn.functional as F

from cplir.errors import ConfigError, InputSizeError
from cplir.models import build_model
from cplir.models.selective_scan import selective_scan
from golden import load_golden
from prompted_backbones import TINY, golden_model, tiny

# Measured from the published code: cschenxiang/DRSformer DRSformer_arch.py (and DRSformer_arch_200L+SPA.py for
# mefc=False), c-yn/FSNet FSNet.py + layers.py (every task folder), csguoh/MambaIR mambairunet_arch.py.
PUBLISHED_COUNTS = [
    ("drsformer", {}, 33_655_424, 924),
    ("drsformer", {"mefc": False}, 32_610_304, 730),
    ("drsformer", {"num_blocks": [1, 1, 1, 1]}, 8_950_010, None),
    ("fsnet", {}, 13_275_689, 1012),
    ("fsnet", {"base_size": 80}, 13_275_689, 1012),
    ("mambair", {}, 26_779_480, 1110),
    ("mambair", {"mlp_ratio": 2.0}, 30_750_424, 1110),
]


@pytest.mark.parametrize("name", ["fsnet_tiny", "fsnet_window80_tiny"])
def test_fsnet_multiscale_outputs_equal_published(name):
    model, ref = golden_model(name, "fsnet")
    with torch.no_grad():
        outs = model.forward_multiscale(ref["input"])
    assert [o.shape[-1] for o in outs] == [8, 16, 32]
    for out, expected in zip(outs, ref["side_outputs"] + [ref["output"]]):
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_fsnet_pooling_variants_differ():
    # The window pooling golden would not catch a model that ignores base_size if the two agreed.
    assert (load_golden("fsnet_tiny")["output"] - load_golden("fsnet_window80_tiny")["output"]).abs().max() > 1e-4


@pytest.mark.parametrize("name, kwargs, expected, entries", PUBLISHED_COUNTS)
def test_published_parameter_counts(name, kwargs, expected, entries):
    with torch.device("meta"):
        model = build_model(name, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == expected
    assert entries is None or len(model.state_dict()) == entries
    assert model.prompt_names == ()


# --- the selective scan ----------------------------------------------------------------------------------------
def sequential_scan(u, delta, A, B, C, D, delta_bias):
    """The recurrence step by step (mamba_ssm's selective_scan_ref, grouped B and C, softplus on delta)."""
    b, channels, length = u.shape
    groups = B.shape[1]
    delta = F.softplus(delta + delta_bias[:, None])
    B = B.repeat_interleave(channels // groups, dim=1)  # (b, channels, N, L)
    C = C.repeat_interleave(channels // groups, dim=1)
    h = torch.zeros(b, channels, A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(length):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[..., t]
        ys.append((h * C[..., t]).sum(-1))
    return torch.stack(ys, -1) + u * D[:, None]


@pytest.mark.parametrize("length, scale, segment", [(37, 1.0, 1024), (100, 4.0, 1024), (5, 1.0, 1024),
                                                   (37, 1.0, 16)])
def test_selective_scan_equals_the_recurrence(length, scale, segment):
    g = torch.Generator().manual_seed(length)
    b, groups, d, n = 2, 4, 3, 5
    u = torch.randn(b, groups * d, length, generator=g, dtype=torch.float64)
    delta = torch.randn(b, groups * d, length, generator=g, dtype=torch.float64) * scale  # scale 4: fast decay
    A = -torch.rand(groups * d, n, generator=g, dtype=torch.float64) * 8
    B, C = (torch.randn(b, groups, n, length, generator=g, dtype=torch.float64) for _ in range(2))
    D, bias = torch.randn(groups * d, generator=g, dtype=torch.float64), torch.randn(groups * d, generator=g)
    expected = sequential_scan(u, delta, A, B, C, D, bias.double())
    got = selective_scan(u.float(), delta.float(), A.float(), B.float(), C.float(), D.float(), bias, segment)
    torch.testing.assert_close(got, expected.float(), atol=1e-4, rtol=1e-4)


def test_selective_scan_gradients_equal_the_recurrence():
    # Three segments, each recomputed in the backward pass (activation checkpointing).
    g = torch.Generator().manual_seed(0)
    b, groups, d, n, length = 1, 4, 2, 3, 40
    inputs = [torch.randn(b, groups * d, length, generator=g), torch.randn(b, groups * d, length, generator=g),
              -torch.rand(groups * d, n, generator=g) * 4, torch.randn(b, groups, n, length, generator=g),
              torch.randn(b, groups, n, length, generator=g), torch.randn(groups * d, generator=g),
              torch.randn(groups * d, generator=g)]
    weights = torch.randn(b, groups * d, length, generator=g)
    grads = []
    for fn, dtype in ((lambda *a: selective_scan(*a, segment=16), torch.float32), (sequential_scan, torch.float64)):
        leaves = [t.detach().to(dtype).requires_grad_() for t in inputs]
        (fn(*leaves) * weights.to(dtype)).sum().backward()
        grads.append([t.grad.float() for t in leaves])
    for ours, expected in zip(*grads):
        torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)


# --- prompts in the decoder ------------------------------------------------------------------------------------
PROMPT_WIDTHS = {  # (prompt block, feature width it reads, prompt width) for the TINY configurations
    "drsformer": [("prompt3", 64, 54), ("prompt2", 32, 22), ("prompt1", 16, 10)],
    "fsnet": [("prompt2", 64, 64), ("prompt1", 32, 32)],
    "mambair": [("prompt3", 256, 24), ("prompt2", 128, 16), ("prompt1", 64, 8)],
}


@pytest.mark.parametrize("name", sorted(PROMPT_WIDTHS))
def test_prompt_blocks_sit_before_each_upsampling(name):
    model = tiny(name, "sparse")
    assert model.shares_encoder
    assert model.prompt_names == tuple(p for p, _, _ in PROMPT_WIDTHS[name])  # deepest first
    for block, width, p_dim in PROMPT_WIDTHS[name]:
        level = block[-1]
        assert getattr(model, block).linear_layer.in_features == width
        assert getattr(model, block).prompt_param.shape[2] == p_dim
        assert getattr(model, f"fuse{level}").reduce.out_channels == width


@pytest.mark.parametrize("name, prompt_params, total", [
    # PromptIR's published prompt blocks (prompt1, prompt2, prompt3) at the U-Nets' widths
    ("drsformer", [1_348_069, 803_781, 1_333_125], 47_079_687),
    ("mambair", [1_348_069, 803_781, 1_333_125], 38_040_822),
    ("fsnet", [1_347_909, 803_461], 16_945_459),  # PromptIR's at H/2 and H/4, read from 64 and 128 channels
])
def test_default_prompts_have_promptir_sizes(name, prompt_params, total):
    with torch.device("meta"):
        model = build_model(name, prompt="sparse")
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert [count(getattr(model, f"prompt{i + 1}")) for i in range(len(prompt_params))] == prompt_params
    assert count(model) == total


# --- argument and input checks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs, words", [
    ("drsformer", {"num_blocks": [1, 1, 1]}, "one entry per level"),
    ("drsformer", {"heads": [8, 2, 2, 4]}, "heads of at least 2 channels"),
    ("fsnet", {"base_channel": 24}, "multiple of 16"),
    ("fsnet", {"num_res": 2}, "at least 4"),
    ("mambair", {"dim": 16}, "dim >= 30"),
    ("mambair", {"prompt": "sparce"}, "prompt must be None"),
    ("fsnet", {"prompt": "sparse", "prompt_sizes": [8, 4, 2]}, "one entry per prompt block"),
])
def test_bad_arguments_are_config_errors(name, kwargs, words):
    with pytest.raises(ConfigError, match=words):
        build_model(name, **dict(TINY[name], **kwargs))


@pytest.mark.parametrize("name", sorted(PROMPT_WIDTHS))
def test_sizes_not_multiple_of_8_are_refused(name):
    model = tiny(name, None)
    assert model.size_multiple == 8 and model.scale == 1
    with pytest.raises(InputSizeError, match="pad_to_multiple"):
        model(torch.rand(1, 3, 12, 16))


def test_fsnet_refuses_to_train_on_one_image():
    model = tiny("fsnet", None).train()
    with pytest.raises(InputSizeError, match="batches of at least 2"):
        model(torch.rand(1, 3, 16, 16))
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 3, 16, 16)
    assert model.eval()(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
