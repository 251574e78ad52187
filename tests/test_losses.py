"""Pixel L1, Contrastive Prompt Regularization (CPR) and the SPN model-contrastive loss."""

import pytest
import torch
import torch.nn.functional as F

from cplir.errors import CheckpointError, ConfigError, InputSizeError
from cplir.losses import ContrastivePromptLoss, ModelContrastiveLoss, VGGFeatures, l1_loss, ssim_loss
from cplir.losses.contrastive_prompt import STANDARD_FLOOR, channel_scale
from cplir.losses.pyramid import PixelGradientPyramid

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def vgg19():
    return VGGFeatures("vgg19", layers=("relu1_1", "relu2_1"), weights="random")


@pytest.fixture(scope="module")
def vgg16():
    return VGGFeatures("vgg16", layers=("relu1_2", "relu2_2", "relu3_3"), weights="random")


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(0)
    restored = torch.rand(2, 3, 32, 32, generator=generator)
    target = torch.rand(2, 3, 32, 32, generator=generator)
    negatives = torch.rand(3, 2, 3, 32, 32, generator=generator)
    return restored, target, negatives


def cpr(vgg, **options):
    return ContrastivePromptLoss(layers=("relu1_1", "relu2_1"), layer_weights=(0.5, 1.0), vgg=vgg, **options)


def test_l1_loss_is_the_mean_absolute_error():
    a, b = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    b[0, 0, 0, 0] = 1.2
    assert l1_loss(a, b).item() == pytest.approx(1.2 / 12)


def test_ssim_loss_matches_idts_published_ssim():
    """Golden values from jiexiaou/IDT ``loss/SSIM.py`` (@ d72510c, class SSIM, float64 images) on these inputs; its
    Gaussian window is computed in float32 (ours in float64), hence agreement to 1e-8, not to the last digit."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 24, generator=generator)
    y = (x + 0.2 * torch.rand(2, 3, 24, 24, generator=generator) - 0.1).clamp(0, 1)
    x, y = x.double(), y.double()
    assert 1 - ssim_loss(x, y).item() == pytest.approx(0.9832226529611908, abs=1e-8)
    assert 1 - ssim_loss(x[:1, :1], y[:1, :1]).item() == pytest.approx(0.9835344471562775, abs=1e-8)
    assert ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-12)
    restored = x.float().requires_grad_()
    ssim_loss(restored, y.float()).backward()
    assert torch.isfinite(restored.grad).all() and restored.grad.abs().sum() > 0


def test_cpr_positive_and_negative_vanish_on_equal_inputs(vgg19, images):
    restored, _, negatives = images
    out = cpr(vgg19)(restored, restored.clone(), negatives)
    assert out["pos"].item() == 0 and out["neg"].item() > 0
    out = cpr(vgg19)(restored, images[1], restored.expand(4, -1, -1, -1, -1))
    assert out["neg"].item() == pytest.approx(0, abs=1e-12) and out["pos"].item() > 0


def test_cpr_decreases_as_negatives_move_away(vgg19, images):
    restored, target, _ = images
    direction = torch.randn(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    loss = cpr(vgg19)
    values = [loss(restored, target, restored + step * direction)["cpr"].item() for step in (0.05, 0.2, 0.5)]
    assert values[0] > values[1] > values[2]


def test_cpr_alpha_scales_the_term(vgg19, images):
    small, large = cpr(vgg19, alpha=0.01)(*images), cpr(vgg19, alpha=0.03)(*images)
    torch.testing.assert_close(small["cpr"], 0.01 * (small["pos"] - small["neg"]))
    torch.testing.assert_close(large["cpr"], 3 * small["cpr"])


def test_cpr_sum_over_negatives_is_m_times_the_mean(vgg19, images):
    mean = cpr(vgg19)(*images)
    summed = cpr(vgg19, negative_reduction="sum")(*images)
    torch.testing.assert_close(summed["neg"], 3 * mean["neg"])
    torch.testing.assert_close(summed["pos"], mean["pos"])
    no_positive = cpr(vgg19, positive=False)(*images)
    assert no_positive["pos"].item() == 0
    torch.testing.assert_close(no_positive["cpr"], -0.01 * mean["neg"])
    code_unnormalised = cpr(vgg19, form="code", channel_norm=False)(*images)
    torch.testing.assert_close(code_unnormalised["neg"], 3 * mean["neg"])
    assert code_unnormalised["pos"].item() == 0


def test_cpr_code_form_normalises_channels_and_counts_every_layer(vgg19, images):
    restored, target, negatives = images
    out = cpr(vgg19, form="code")(*images)
    plus = vgg19(restored)
    expected = 0.0
    for negative in negatives:  # sum over negatives, both layers, unit feature vectors along channels
        minus = vgg19(negative)
        for name, weight in (("relu1_1", 0.5), ("relu2_1", 1.0)):
            a, b = F.normalize(minus[name], dim=1), F.normalize(plus[name], dim=1)
            expected = expected + weight * (a - b).square().mean()
    torch.testing.assert_close(out["neg"], expected)
    torch.testing.assert_close(out["cpr"], -0.01 * expected)
    assert out["neg"].item() != pytest.approx(cpr(vgg19, negative_reduction="sum")(*images)["neg"].item())


def test_cpr_gradient_reaches_restored_but_not_negatives(vgg19, images):
    restored, target, negatives = (t.clone().requires_grad_(True) for t in images)
    cpr(vgg19)(restored, target, negatives)["cpr"].backward()
    assert restored.grad is not None and restored.grad.abs().sum() > 0
    assert negatives.grad is None
    restored, target, negatives = (t.clone().requires_grad_(True) for t in images)
    value = cpr(vgg19, negative_grad=True)(restored, target, negatives)["cpr"]
    torch.testing.assert_close(value, cpr(vgg19)(*images)["cpr"])  # the same value, only the gradient differs
    value.backward()
    assert negatives.grad is not None and negatives.grad.abs().sum() > 0  # loss.cpr.negative_grad
    assert target.grad is None


@pytest.mark.parametrize("distance", ["l2", "l1"])
def test_cpr_matches_a_hand_computed_one_layer_value(vgg19, images, distance):
    restored, target, negatives = images
    loss = ContrastivePromptLoss(alpha=0.1, layers=("relu1_1",), layer_weights=(0.7,), distance=distance, vgg=vgg19)
    conv = vgg19.features[0]

    def phi(x):
        return torch.relu(F.conv2d((x - MEAN) / STD, conv.weight, conv.bias, padding=1))

    def dist(a, b):
        return ((a - b) ** 2).mean() if distance == "l2" else (a - b).abs().mean()

    pos = 0.7 * dist(phi(restored), phi(target))
    neg = sum(0.7 * dist(phi(n), phi(restored)) for n in negatives) / 3
    out = loss(*images)
    torch.testing.assert_close(out["pos"], pos)
    torch.testing.assert_close(out["neg"], neg)
    torch.testing.assert_close(out["cpr"], 0.1 * (pos - neg))


def test_cpr_defaults_and_errors(vgg19, images, tmp_path, monkeypatch):
    loss = ContrastivePromptLoss(vgg="random")
    assert loss.alpha == 0.01 and loss.positive and loss.negative_reduction == "mean" and not loss.channel_norm
    assert loss.layer_weights == {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8, "relu4_1": 1 / 4,
                                  "relu5_1": 1.0}
    assert loss.vgg.arch == "vgg19" and loss.vgg.random_weights
    code = ContrastivePromptLoss(form="code", vgg=vgg19, layers=("relu1_1",), layer_weights=(1.0,))
    assert not code.positive and code.negative_reduction == "sum" and code.channel_norm
    with pytest.raises(ConfigError, match="relu3_1"):
        ContrastivePromptLoss(vgg=vgg19)  # the given network lacks the default layers
    with pytest.raises(ConfigError):
        cpr(vgg19, form="published")
    with pytest.raises(ConfigError):
        ContrastivePromptLoss(layers=("relu1_1",), layer_weights=(1.0, 2.0), vgg=vgg19)
    with pytest.raises(InputSizeError):
        cpr(vgg19)(images[0], images[1], images[2][0])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("CPLIR_VGG19_WEIGHTS", raising=False)
    with pytest.raises(CheckpointError, match="CPLIR_VGG19_WEIGHTS"):
        ContrastivePromptLoss()


def test_pixel_gradient_pyramid_has_colours_and_forward_differences_at_four_scales():
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8) / 8  # brightness rises by 1/8 per column
    features = PixelGradientPyramid()(ramp)
    assert list(features) == ["level0", "level1", "level2", "level3"]
    assert [tuple(f.shape) for f in features.values()] == [(1, 9, 8, 8), (1, 9, 4, 4), (1, 9, 2, 2), (1, 9, 1, 1)]
    level0, level1 = features["level0"], features["level1"]
    torch.testing.assert_close(level0[:, :3], ramp)
    assert (level0[:, 3:6, :, :-1] == 1 / 8).all() and (level0[:, 3:6, :, -1] == 0).all()  # dx, last column 0
    assert (level0[:, 6:] == 0).all()  # no vertical change
    assert torch.allclose(level1[:, 3:6, :, :-1], torch.tensor(2 / 8))  # pooled twice as coarse


def test_download_free_feature_spaces_are_standardised_per_channel(vgg19, images):
    restored, target, negatives = images
    # The pyramid is linear and standardised: scaling every image by a constant leaves the loss unchanged.
    pyramid = ContrastivePromptLoss(features="pyramid")
    assert pyramid.vgg is None and pyramid.layer_weights == dict.fromkeys(PixelGradientPyramid().layers, 1.0)
    out, scaled = pyramid(*images), pyramid(3 * restored, 3 * target, 3 * negatives)
    torch.testing.assert_close(out["cpr"], scaled["cpr"])
    # vgg_standardized = the raw VGG distance of features divided by the restored images' channel scales.
    loss = cpr(vgg19, features="vgg_standardized")
    plus = vgg19(restored)
    scale = {name: channel_scale(f) for name, f in plus.items()}
    pos = sum(w * ((plus[n] - vgg19(target)[n]) / scale[n]).square().mean() for n, w in loss.layer_weights.items())
    torch.testing.assert_close(loss(*images)["pos"], pos)
    features = torch.rand(2, 2, 4, 4, generator=torch.Generator().manual_seed(2))
    features[:, 1] *= 1e-6  # a nearly silent channel is floored at a tenth of the mean scale, not blown up
    std, scale = features.std(dim=(0, 2, 3)), channel_scale(features).flatten()
    assert scale[0] == std[0] and scale[1].item() == pytest.approx(STANDARD_FLOOR * std.mean().item())
    with pytest.raises(ConfigError, match="features"):
        cpr(vgg19, features="lpips")


def test_spn_sign_and_lambda_scaling(vgg16, images):
    restored, _, negatives = images
    near = [restored + 0.05 * (n - restored) for n in negatives]
    far = [restored + 0.5 * (n - restored) for n in negatives]
    loss = ModelContrastiveLoss(vgg=vgg16)
    out_near, out_far = loss(restored, near), loss(restored, far)
    assert out_far["neg"] > out_near["neg"] > 0
    assert out_far["spn"] < out_near["spn"] < 0
    torch.testing.assert_close(out_far["spn"], -0.001 * out_far["neg"])
    torch.testing.assert_close(ModelContrastiveLoss(lam=0.01, vgg=vgg16)(restored, far)["spn"], 10 * out_far["spn"])


def test_spn_layer_weighting_by_hand(vgg16, images):
    restored, _, negatives = images
    rec = vgg16(restored)
    per_negative = [{k: (v - rec[k]).abs().mean() for k, v in vgg16(n).items()} for n in negatives]
    expected = sum(0.2 * d["relu1_2"] + 0.3 * d["relu2_2"] + 0.5 * d["relu3_3"] for d in per_negative) / 3
    torch.testing.assert_close(ModelContrastiveLoss(vgg=vgg16)(restored, list(negatives))["neg"], expected)
    only_first = ModelContrastiveLoss(layer_weights=(1.0, 0.0, 0.0), vgg=vgg16)(restored, list(negatives))
    torch.testing.assert_close(only_first["neg"], sum(d["relu1_2"] for d in per_negative) / 3)


def test_spn_gradient_and_defaults(vgg16, images):
    restored = images[0].clone().requires_grad_(True)
    negative = images[1].clone().requires_grad_(True)
    ModelContrastiveLoss(vgg=vgg16)(restored, [negative])["spn"].backward()
    assert restored.grad.abs().sum() > 0 and negative.grad is None
    assert ModelContrastiveLoss(vgg="random").vgg.arch == "vgg16"
    with pytest.raises(InputSizeError):
        ModelContrastiveLoss(vgg=vgg16)(images[0], [])
