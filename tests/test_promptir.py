"""PromptIR backbone: parameter counts, state-dict layout and the published numerics."""

import pytest
import torch
import torch.nn.functional as F

from cplir.errors import InputSizeError
from cplir.inference import run_padded
from cplir.models import PromptIR, build_model

# Per-module parameter counts of the published model (docs/design.md §1), dead layers excluded.
PUBLISHED_MODULE_PARAMS = {
    "prompt1": 1_348_069, "prompt2": 803_781, "prompt3": 1_333_125, "latent": 14_370_448,
    "noise_level3": 5_991_652, "reduce_noise_level3": 135_168, "decoder_level3": 2_738_112,
    "noise_level2": 1_251_802, "reduce_noise_level2": 61_440, "decoder_level2": 707_232,
    "noise_level1": 319_014, "reduce_noise_level1": 15_360, "decoder_level1": 471_484, "refinement": 471_484,
    "encoder_level1": 125_116, "encoder_level2": 707_232, "encoder_level3": 2_738_112, "up4_3": 663_552,
    "up3_2": 663_552, "up2_1": 165_888, "down1_2": 10_368, "down2_3": 41_472, "down3_4": 165_888,
    "reduce_chan_level3": 55_296, "reduce_chan_level2": 18_432, "patch_embed": 1_296, "output": 2_592,
}
DEAD_LAYER_PARAMS = 215_296


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def default_model():
    with torch.device("meta"):  # counts and shapes need no memory
        return build_model("promptir")


def test_default_parameter_count(default_model):
    assert count(default_model) == 35_376_967
    assert len(default_model.state_dict()) == 542
    for name, expected in PUBLISHED_MODULE_PARAMS.items():
        assert count(getattr(default_model, name)) == expected, name
    assert sum(PUBLISHED_MODULE_PARAMS.values()) == 35_376_967


def test_sparse_model_has_the_same_parameters(default_model):
    sparse = build_model("cplir")
    dense_shapes = {k: v.shape for k, v in default_model.state_dict().items()}
    assert {k: v.shape for k, v in sparse.state_dict().items()} == dense_shapes


def test_one_block_per_level_count_matches_published():
    model = PromptIR(num_blocks=(1, 1, 1, 1), num_refinement_blocks=1)
    assert count(model) + DEAD_LAYER_PARAMS == 16_474_818


def expected_layout(dim=48, blocks=(4, 6, 6, 8), refine=4, heads=(1, 2, 4, 8), prompts=(64, 128, 320),
                    sizes=(64, 32, 16), n_prompts=5):
    """State-dict keys and shapes derived from the published data flow (docs/design.md §1), independently of the
    model code."""
    out = {}

    def conv(name, cin, cout, k=1, groups=1):
        out[f"{name}.weight"] = (cout, cin // groups, k, k)

    def block(p, w, h):
        hidden = int(w * 2.66)
        for norm in ("norm1", "norm2"):
            out[f"{p}.{norm}.body.weight"] = (w,)
            out[f"{p}.{norm}.body.bias"] = (w,)
        out[f"{p}.attn.temperature"] = (h, 1, 1)
        conv(f"{p}.attn.qkv", w, 3 * w)
        conv(f"{p}.attn.qkv_dwconv", 3 * w, 3 * w, 3, groups=3 * w)
        conv(f"{p}.attn.project_out", w, w)
        conv(f"{p}.ffn.project_in", w, 2 * hidden)
        conv(f"{p}.ffn.dwconv", 2 * hidden, 2 * hidden, 3, groups=2 * hidden)
        conv(f"{p}.ffn.project_out", hidden, w)

    def stage(name, n, w, h):
        for i in range(n):
            block(f"{name}.{i}", w, h)

    def prompt(name, c, s, lin):
        out[f"{name}.prompt_param"] = (1, n_prompts, c, s, s)
        out[f"{name}.linear_layer.weight"] = (n_prompts, lin)
        out[f"{name}.linear_layer.bias"] = (n_prompts,)
        conv(f"{name}.conv3x3", c, c, 3)

    d = dim
    conv("patch_embed.proj", 3, d, 3)
    stage("encoder_level1", blocks[0], d, heads[0])
    conv("down1_2.body.0", d, d // 2, 3)
    stage("encoder_level2", blocks[1], 2 * d, heads[1])
    conv("down2_3.body.0", 2 * d, d, 3)
    stage("encoder_level3", blocks[2], 4 * d, heads[2])
    conv("down3_4.body.0", 4 * d, 2 * d, 3)
    stage("latent", blocks[3], 8 * d, heads[3])
    prompt("prompt3", prompts[2], sizes[2], 8 * d)
    block("noise_level3", 8 * d + prompts[2], heads[2])
    conv("reduce_noise_level3", 8 * d + prompts[2], 4 * d)
    conv("up4_3.body.0", 4 * d, 8 * d, 3)
    conv("reduce_chan_level3", 6 * d, 4 * d)
    stage("decoder_level3", blocks[2], 4 * d, heads[2])
    prompt("prompt2", prompts[1], sizes[1], 4 * d)
    block("noise_level2", 4 * d + prompts[1], heads[2])
    conv("reduce_noise_level2", 4 * d + prompts[1], 4 * d)
    conv("up3_2.body.0", 4 * d, 8 * d, 3)
    conv("reduce_chan_level2", 4 * d, 2 * d)
    stage("decoder_level2", blocks[1], 2 * d, heads[1])
    prompt("prompt1", prompts[0], sizes[0], 2 * d)
    block("noise_level1", 2 * d + prompts[0], heads[2])
    conv("reduce_noise_level1", 2 * d + prompts[0], 2 * d)
    conv("up2_1.body.0", 2 * d, 4 * d, 3)
    stage("decoder_level1", blocks[0], 2 * d, heads[0])
    stage("refinement", refine, 2 * d, heads[0])
    conv("output", 2 * d, 3, 3)
    return out


def test_state_dict_keys_and_shapes(default_model):
    got = {k: tuple(v.shape) for k, v in default_model.state_dict().items()}
    assert got == expected_layout()
    assert "encoder_level1.0.attn.temperature" in got and "down1_2.body.0.weight" in got


def test_tiny_layout_derives_from_dim(tiny_kwargs):
    model = build_model("cplir", **tiny_kwargs)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == expected_layout(dim=16, blocks=(1, 1, 1, 1), refine=1, prompts=(20, 44, 108), sizes=(16, 8, 4))


# --- numerics: an independent functional transcription of the published forward pass -----------------------------
def _ref_norm(x, sd, p):
    b, c, h, w = x.shape
    t = x.flatten(2).transpose(1, 2)  # to_3d: (B, HW, C)
    mu = t.mean(-1, keepdim=True)
    var = t.var(-1, keepdim=True, unbiased=False)
    t = (t - mu) / torch.sqrt(var + 1e-5) * sd[p + ".body.weight"] + sd[p + ".body.bias"]
    return t.transpose(1, 2).reshape(b, c, h, w)


def _ref_block(x, sd, p, heads):
    y = _ref_norm(x, sd, p + ".norm1")
    b, c, h, w = y.shape
    qkv = F.conv2d(y, sd[p + ".attn.qkv.weight"])
    qkv = F.conv2d(qkv, sd[p + ".attn.qkv_dwconv.weight"], padding=1, groups=3 * c)
    q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in qkv.chunk(3, dim=1))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    attn = ((q @ k.transpose(-2, -1)) * sd[p + ".attn.temperature"]).softmax(-1)
    x = x + F.conv2d((attn @ v).reshape(b, c, h, w), sd[p + ".attn.project_out.weight"])
    y = _ref_norm(x, sd, p + ".norm2")
    y = F.conv2d(y, sd[p + ".ffn.project_in.weight"])
    y = F.conv2d(y, sd[p + ".ffn.dwconv.weight"], padding=1, groups=y.shape[1])
    y1, y2 = y.chunk(2, dim=1)
    return x + F.conv2d(F.gelu(y1) * y2, sd[p + ".ffn.project_out.weight"])


def _ref_stage(x, sd, name, heads):
    i = 0
    while f"{name}.{i}.attn.temperature" in sd:
        x = _ref_block(x, sd, f"{name}.{i}", heads)
        i += 1
    return x


def _ref_prompt(x, sd, p):
    b, c, h, w = x.shape
    weights = F.softmax(F.linear(x.mean(dim=(-2, -1)), sd[p + ".linear_layer.weight"], sd[p + ".linear_layer.bias"]), 1)
    param = sd[p + ".prompt_param"]
    prompt = (weights[:, :, None, None, None] * param.repeat(b, 1, 1, 1, 1)).sum(1)
    prompt = F.interpolate(prompt, (h, w), mode="bilinear")
    return F.conv2d(prompt, sd[p + ".conv3x3.weight"], padding=1)


def reference_forward(sd, x, heads=(1, 2, 4, 8)):
    e1 = _ref_stage(F.conv2d(x, sd["patch_embed.proj.weight"], padding=1), sd, "encoder_level1", heads[0])
    down = lambda t, n: F.pixel_unshuffle(F.conv2d(t, sd[n + ".body.0.weight"], padding=1), 2)  # noqa: E731
    up = lambda t, n: F.pixel_shuffle(F.conv2d(t, sd[n + ".body.0.weight"], padding=1), 2)  # noqa: E731
    e2 = _ref_stage(down(e1, "down1_2"), sd, "encoder_level2", heads[1])
    e3 = _ref_stage(down(e2, "down2_3"), sd, "encoder_level3", heads[2])
    lat = _ref_stage(down(e3, "down3_4"), sd, "latent", heads[3])
    lat = torch.cat([lat, _ref_prompt(lat, sd, "prompt3")], 1)
    lat = F.conv2d(_ref_block(lat, sd, "noise_level3", heads[2]), sd["reduce_noise_level3.weight"])
    d3 = F.conv2d(torch.cat([up(lat, "up4_3"), e3], 1), sd["reduce_chan_level3.weight"])
    d3 = _ref_stage(d3, sd, "decoder_level3", heads[2])
    d3 = torch.cat([d3, _ref_prompt(d3, sd, "prompt2")], 1)
    d3 = F.conv2d(_ref_block(d3, sd, "noise_level2", heads[2]), sd["reduce_noise_level2.weight"])
    d2 = F.conv2d(torch.cat([up(d3, "up3_2"), e2], 1), sd["reduce_chan_level2.weight"])
    d2 = _ref_stage(d2, sd, "decoder_level2", heads[1])
    d2 = torch.cat([d2, _ref_prompt(d2, sd, "prompt1")], 1)
    d2 = F.conv2d(_ref_block(d2, sd, "noise_level1", heads[2]), sd["reduce_noise_level1.weight"])
    d1 = torch.cat([up(d2, "up2_1"), e1], 1)
    d1 = _ref_stage(_ref_stage(d1, sd, "decoder_level1", heads[0]), sd, "refinement", heads[0])
    return F.conv2d(d1, sd["output.weight"], padding=1) + x


def test_forward_equals_published_numerics(tiny_kwargs):
    torch.manual_seed(0)
    model = build_model("promptir", **dict(tiny_kwargs, num_blocks=(1, 2, 1, 2), num_refinement_blocks=2)).eval()
    for p in model.parameters():  # move every parameter off its init so norms and biases matter
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.rand(2, 3, 24, 32)
    with torch.no_grad():
        ours = model(x)
        ref = reference_forward(model.state_dict(), x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["promptir", "cplir"])
@pytest.mark.parametrize("size", [(24, 40), (8, 56), (40, 16)])
def test_forward_shapes(name, size, tiny_kwargs):
    model = build_model(name, **tiny_kwargs).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        assert model(x).shape == x.shape


@pytest.mark.parametrize("size", [(30, 32), (32, 33), (7, 7)])
def test_bad_size_error_is_clear(size, tiny_kwargs):
    model = build_model("cplir", **tiny_kwargs).eval()
    with pytest.raises(InputSizeError, match=r"not a multiple of 8.*pad_to_multiple"):
        model(torch.rand(1, 3, *size))


def test_padding_wrapper_handles_odd_sizes(tiny_kwargs):
    model = build_model("promptir", **tiny_kwargs).eval()
    x = torch.rand(1, 3, 29, 35)
    with torch.no_grad():
        y = run_padded(model, x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("size", [(29, 35), (1, 1), (8, 16), (17, 3)])
def test_padding_round_trips_exactly(size):
    """Pad to the model's multiple, run, crop back: an identity model returns the input bit for bit, the model
    only ever sees multiples of its size_multiple, and a scale-2 model's output is cropped at twice the size."""
    seen = []

    class Identity(torch.nn.Module):
        size_multiple, scale = 8, 1

        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return x

    class Double(Identity):
        scale = 2

        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    x = torch.rand(2, 3, *size)
    assert torch.equal(run_padded(Identity(), x), x)
    torch.testing.assert_close(run_padded(Double(), x), torch.nn.functional.interpolate(x, scale_factor=2),
                               rtol=0, atol=0)
    assert all(h % 8 == 0 and w % 8 == 0 for h, w in seen)
    assert run_padded(Identity(), x, multiple=16).shape == x.shape and seen[-1][0] % 16 == 0


def test_non_batched_input_is_rejected(tiny_kwargs):
    model = build_model("promptir", **tiny_kwargs)
    with pytest.raises(InputSizeError, match=r"\(B, C, H, W\)"):
        model(torch.rand(3, 16, 16))


@pytest.mark.slow
def test_cli_counts_parameters_with_model_arguments(capsys):
    from cplir.cli import main

    args = ["--arg", "dim=8", "--arg", "num_blocks=[1,1,1,1]", "--arg", "num_refinement_blocks=1",
            "--arg", "ffn_expansion_factor=2e0"]  # YAML 1.1 would read 2e0 as a string
    assert main(["models", "promptir", "cplir", "--count", *args]) == 0
    expected = count(PromptIR(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, ffn_expansion_factor=2.0))
    counts = dict(line.split()[:2] for line in capsys.readouterr().out.splitlines())
    assert counts == {"promptir": f"{expected:,d}", "cplir": f"{expected:,d}"}
    # over every registered model, one that does not take the arguments is listed as such, not a traceback
    assert main(["models", "--count", *args]) == 0
    lines = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert lines["promptir"].startswith(f"{expected:,d}") and "cannot be built with these arguments" in lines["nafnet"]
    assert main(["models", "nafnet", "--count", "--arg", "dim=8"]) == 2
    assert "nafnet" in capsys.readouterr().err
    assert main(["models", "--count"]) == 0  # the published defaults of every backbone, on the meta device
    assert "17,111,907" in capsys.readouterr().out  # NAFNet GoPro width 32
    assert main(["models", "--count", "--arg", "dim"]) == 2
    assert "must look like key=value" in capsys.readouterr().err
