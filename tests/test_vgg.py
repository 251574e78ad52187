"""VGG feature networks: torchvision numbering, weight files, weight finding, random init."""

import pytest
import torch
from torch import nn

from cplir.errors import CheckpointError, ConfigError
from cplir.losses.vgg import VGGFeatures, find_vgg_weights

# torchvision's ``features`` layout, written out from the VGG paper's configurations D and E.
CONV_INDICES = {
    "vgg19": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34],
    "vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
}
CONV_WIDTHS = {
    "vgg19": [64, 64, 128, 128, 256, 256, 256, 256] + [512] * 8,
    "vgg16": [64, 64, 128, 128, 256, 256, 256] + [512] * 6,
}


def torchvision_shapes(arch, last_index=99):
    shapes = {}
    in_channels = 3
    for index, width in zip(CONV_INDICES[arch], CONV_WIDTHS[arch]):
        if index <= last_index:
            shapes[f"features.{index}.weight"] = (width, in_channels, 3, 3)
            shapes[f"features.{index}.bias"] = (width,)
        in_channels = width
    return shapes


def torchvision_state(arch, last_index, classifier=True, seed=0):
    generator = torch.Generator().manual_seed(seed)
    state = {key: torch.randn(shape, generator=generator)
             for key, shape in torchvision_shapes(arch, last_index).items()}
    if classifier:  # ignored by the loader; real files hold Linear(25088, 4096) etc.
        state["classifier.0.weight"] = torch.zeros(4, 8)
        state["classifier.0.bias"] = torch.zeros(4)
    return state


@pytest.fixture(autouse=True)
def no_weight_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("CPLIR_VGG19_WEIGHTS", raising=False)
    monkeypatch.delenv("CPLIR_VGG16_WEIGHTS", raising=False)


@pytest.fixture(scope="module")
def vgg19_full():
    layers = ("relu1_1", "relu1_2", "relu2_2", "relu3_4", "relu4_4", "conv5_4", "relu5_4")
    return VGGFeatures("vgg19", layers=layers, weights="random")


def test_vgg19_numbering_matches_torchvision(vgg19_full):
    shapes = {f"features.{k}": tuple(v.shape) for k, v in vgg19_full.features.state_dict().items()}
    assert shapes == torchvision_shapes("vgg19")
    assert len(vgg19_full.features) == 36  # truncated after relu5_4
    assert isinstance(vgg19_full.features[34], nn.Conv2d) and vgg19_full.features[34].out_channels == 512
    assert all(isinstance(vgg19_full.features[i], nn.MaxPool2d) for i in (4, 9, 18, 27))
    assert all(isinstance(vgg19_full.features[i + 1], nn.ReLU) for i in CONV_INDICES["vgg19"])


def test_vgg16_numbering_and_truncation():
    vgg = VGGFeatures("vgg16", layers=("pool5",), weights="random")
    shapes = {f"features.{k}": tuple(v.shape) for k, v in vgg.features.state_dict().items()}
    assert shapes == torchvision_shapes("vgg16")
    assert len(vgg.features) == 31 and isinstance(vgg.features[30], nn.MaxPool2d)
    assert isinstance(vgg.features[28], nn.Conv2d)
    assert len(VGGFeatures("vgg16", layers=("relu2_2",), weights="random").features) == 9


def test_layer_outputs_channels_and_resolution(vgg19_full):
    x = torch.rand(2, 3, 32, 32)
    out = vgg19_full(x)
    expected = {"relu1_1": (64, 32), "relu1_2": (64, 32), "relu2_2": (128, 16), "relu3_4": (256, 8),
                "relu4_4": (512, 4), "conv5_4": (512, 2), "relu5_4": (512, 2)}
    assert {k: (v.shape[1], v.shape[2]) for k, v in out.items()} == expected
    assert all(v.shape[0] == 2 and v.shape[2] == v.shape[3] for v in out.values())
    # conv5_4 is taken before its ReLU (no in-place activation spoils it).
    assert (out["conv5_4"] < 0).any()
    torch.testing.assert_close(out["relu5_4"], out["conv5_4"].clamp_min(0))
    # ImageNet normalisation of [0, 1] input before the first convolution.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    conv = vgg19_full.features[0]
    torch.testing.assert_close(out["relu1_1"], torch.relu(conv((x - mean) / std)))


def test_loads_full_and_features_only_files(tmp_path):
    state = torchvision_state("vgg19", last_index=7)
    for classifier in (True, False):
        path = tmp_path / f"vgg19_{classifier}.pth"
        torch.save({k: v for k, v in state.items() if classifier or k.startswith("features.")}, path)
        vgg = VGGFeatures("vgg19", layers=("relu2_2",), weights=path)
        assert not vgg.random_weights and vgg.weights_source == str(path)
        for index in (0, 2, 5, 7):
            assert torch.equal(vgg.features[index].weight, state[f"features.{index}.weight"])
            assert torch.equal(vgg.features[index].bias, state[f"features.{index}.bias"])


def test_wrong_files_raise_checkpoint_error(tmp_path):
    vgg16_file = tmp_path / "vgg16.pth"  # VGG16 has a max-pool where VGG19 has conv3_4 (index 16)
    torch.save(torchvision_state("vgg16", last_index=17), vgg16_file)
    with pytest.raises(CheckpointError, match="features.16.weight is missing"):
        VGGFeatures("vgg19", layers=("relu3_4",), weights=vgg16_file)
    bad_shape = torchvision_state("vgg19", last_index=2)
    bad_shape["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    torch.save(bad_shape, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"features.2.weight has shape \(64, 32, 3, 3\)"):
        VGGFeatures("vgg19", layers=("relu1_2",), weights=tmp_path / "bad.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        VGGFeatures("vgg19", layers=("relu1_2",), weights=tmp_path / "garbage.pth")


@pytest.mark.parametrize("arch, env, name", [("vgg19", "CPLIR_VGG19_WEIGHTS", "vgg19-dcbb9e9d.pth"),
                                             ("vgg16", "CPLIR_VGG16_WEIGHTS", "vgg16-397923af.pth")])
def test_missing_weights_say_where_to_put_them(tmp_path, arch, env, name):
    with pytest.raises(CheckpointError) as info:
        VGGFeatures(arch, layers=("relu1_1",))
    message = str(info.value)
    assert env in message and "weights='random'" in message
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / name) in message


def test_random_weights_are_deterministic_frozen_and_labelled():
    a = VGGFeatures("vgg19", layers=("relu2_1",), weights="random", seed=3)
    b = VGGFeatures("vgg19", layers=("relu2_1",), weights="random", seed=3)
    c = VGGFeatures("vgg19", layers=("relu2_1",), weights="random", seed=4)
    assert a.random_weights and a.weights_source == "random (seed 3)"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    assert not any(p.requires_grad for p in a.parameters())
    a.train()
    assert not a.training
    # Kaiming-normal (fan_out) init: conv1_2 weights have std sqrt(2 / (64·9)).
    assert abs(a.features[2].weight.std().item() - (2 / 576) ** 0.5) < 0.003


def test_unknown_layer_or_arch_is_a_config_error():
    with pytest.raises(ConfigError, match="relu3_4"):
        VGGFeatures("vgg16", layers=("relu3_4",), weights="random")
    with pytest.raises(ConfigError, match="vgg11"):
        VGGFeatures("vgg11", weights="random")


def test_weight_finding_order(tmp_path, monkeypatch):
    explicit, env_file = tmp_path / "explicit.pth", tmp_path / "env.pth"
    home_file = tmp_path / "torch_home" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    home_file.parent.mkdir(parents=True)
    for path in (explicit, env_file, home_file):
        path.touch()
    monkeypatch.setenv("CPLIR_VGG19_WEIGHTS", str(env_file))
    assert find_vgg_weights("vgg19", explicit) == explicit
    assert find_vgg_weights("vgg19") == env_file
    assert find_vgg_weights("vgg16") is None  # the VGG19 variable does not apply to VGG16
    monkeypatch.delenv("CPLIR_VGG19_WEIGHTS")
    assert find_vgg_weights("vgg19") == home_file
    home_file.unlink()
    assert find_vgg_weights("vgg19") is None
    with pytest.raises(CheckpointError, match="does not exist"):
        find_vgg_weights("vgg19", tmp_path / "typo.pth")
    monkeypatch.setenv("CPLIR_VGG19_WEIGHTS", str(tmp_path / "typo.pth"))
    with pytest.raises(CheckpointError, match="CPLIR_VGG19_WEIGHTS"):
        find_vgg_weights("vgg19")


def test_weights_found_through_environment_are_loaded(tmp_path, monkeypatch):
    state = torchvision_state("vgg16", last_index=2, seed=5)
    torch.save(state, tmp_path / "v16.pth")
    monkeypatch.setenv("CPLIR_VGG16_WEIGHTS", str(tmp_path / "v16.pth"))
    vgg = VGGFeatures("vgg16", layers=("relu1_2",))
    assert torch.equal(vgg.features[2].weight, state["features.2.weight"])
