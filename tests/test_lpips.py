"""LPIPS: the published computation (golden references), hand-checkable cases, weight files, n/a without them."""

import sys

import pytest
import torch
import torch.nn.functional as F

import cplir.metrics.lpips as lpips_module
from cplir.errors import CheckpointError
from cplir.metrics.lpips import LPIPS, build_lpips, lpips_torch
from golden import fill_deterministic, load_golden, state_shapes


@pytest.fixture(autouse=True)
def no_weights_anywhere(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for var in ("CPLIR_ALEXNET_WEIGHTS", "CPLIR_VGG16_WEIGHTS", "CPLIR_LPIPS_ALEX_HEADS", "CPLIR_LPIPS_VGG_HEADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(lpips_module, "_packaged_heads", lambda net: None)  # an installed lpips package


@pytest.fixture(scope="module")
def alex():
    return LPIPS("alex", "random", "random", seed=1)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_matches_the_published_lpips(net):
    golden = load_golden(f"lpips_{net}")
    metric = fill_deterministic(LPIPS(net, "random", "random"))
    assert state_shapes(metric) == golden["shapes"]
    x, y = golden["input"]
    torch.testing.assert_close(metric(x, y), golden["output"], atol=1e-6, rtol=1e-4)


def test_identical_images_give_zero_and_the_distance_is_symmetric(alex):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 64, 64, generator=gen), torch.rand(2, 3, 64, 64, generator=gen)
    assert torch.equal(alex(x, x), torch.zeros(2))
    torch.testing.assert_close(alex(x, y), alex(y, x))
    assert (alex(x, y) > 0).all()  # non-negative heads on a positive squared difference


def test_alexnet_lpips_equals_the_formula(alex):
    """The definition written out with functional ops on the metric's own weights."""
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(1, 3, 64, 64, generator=gen), torch.rand(1, 3, 64, 64, generator=gen)
    conv = [m for m in alex.trunk.features if isinstance(m, torch.nn.Conv2d)]
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def relus(img):
        h = (2 * img - 1 - shift) / scale
        r1 = F.relu(F.conv2d(h, conv[0].weight, conv[0].bias, stride=4, padding=2))
        r2 = F.relu(F.conv2d(F.max_pool2d(r1, 3, 2), conv[1].weight, conv[1].bias, padding=2))
        r3 = F.relu(F.conv2d(F.max_pool2d(r2, 3, 2), conv[2].weight, conv[2].bias, padding=1))
        r4 = F.relu(F.conv2d(r3, conv[3].weight, conv[3].bias, padding=1))
        r5 = F.relu(F.conv2d(r4, conv[4].weight, conv[4].bias, padding=1))
        return [r1, r2, r3, r4, r5]

    expected = 0.0
    for k, (a, b) in enumerate(zip(relus(x), relus(y))):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
        w = getattr(alex, f"lin{k}").model[1].weight.view(1, -1, 1, 1)
        expected = expected + ((a - b) ** 2 * w).sum(dim=1).mean()
    torch.testing.assert_close(alex(x, y), expected.view(1), atol=1e-6, rtol=1e-5)


def test_protocol_view_rounds_and_crops(alex):
    gen = torch.Generator().manual_seed(2)
    x, y = torch.rand(1, 3, 72, 72, generator=gen), torch.rand(1, 3, 72, 72, generator=gen)
    rounded = [torch.round(t * 255) / 255 for t in (x, y)]
    torch.testing.assert_close(lpips_torch(alex, x, y, "basicsr_y", 4),
                               alex(rounded[0][..., 4:-4, 4:-4], rounded[1][..., 4:-4, 4:-4]))
    torch.testing.assert_close(lpips_torch(alex, x, y, "promptir"), alex(x[..., 4:68, 4:68], y[..., 4:68, 4:68]))


def write_published_files(tmp_path, net="alex"):
    """A torchvision-style trunk file (``features.*``, plus a classifier entry) and a head file with the published
    key names ``linK.model.1.weight``, both from a seeded random metric."""
    source = LPIPS(net, "random", "random", seed=5)
    trunk = {f"features.{k}": v for k, v in source.trunk.features.state_dict().items()}
    trunk["classifier.1.weight"] = torch.zeros(2, 2)
    heads = {k: v for k, v in source.state_dict().items() if k.startswith("lin")}
    assert sorted(heads) == [f"lin{k}.model.1.weight" for k in range(5)]
    torch.save(trunk, tmp_path / "alexnet-owt-7be5be79.pth")
    torch.save(heads, tmp_path / "alex.pth")
    return source


def test_published_files_load_through_the_search_order(tmp_path, monkeypatch):
    source = write_published_files(tmp_path)
    metric, note = build_lpips("alex", str(tmp_path / "alexnet-owt-7be5be79.pth"), str(tmp_path / "alex.pth"))
    assert note == "" and not metric.random_weights
    x, y = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    torch.testing.assert_close(metric(x, y), source(x, y))
    monkeypatch.setenv("CPLIR_ALEXNET_WEIGHTS", str(tmp_path / "alexnet-owt-7be5be79.pth"))
    monkeypatch.setenv("CPLIR_LPIPS_ALEX_HEADS", str(tmp_path / "alex.pth"))
    assert build_lpips("alex")[0] is not None


def test_without_weights_the_metric_is_not_available(tmp_path):
    metric, note = build_lpips("alex")
    assert metric is None and note.startswith("LPIPS n/a")
    assert "alexnet-owt-7be5be79.pth" in note and "CPLIR_LPIPS_ALEX_HEADS" in note
    metric, note = build_lpips("vgg")
    assert metric is None and "vgg16-397923af.pth" in note and "lpips/v0.1/vgg.pth" in note
    with pytest.raises(CheckpointError, match="does not exist"):
        build_lpips("alex", str(tmp_path / "typo.pth"))
    torch.save({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, tmp_path / "bad.pth")
    write_published_files(tmp_path)
    with pytest.raises(CheckpointError, match="lin0.model.1.weight has shape"):
        build_lpips("alex", str(tmp_path / "alexnet-owt-7be5be79.pth"), str(tmp_path / "bad.pth"))


def test_heads_are_read_from_an_installed_lpips_package_without_importing_it(tmp_path, monkeypatch):
    monkeypatch.undo()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    package = tmp_path / "site" / "lpips"
    (package / "weights" / "v0.1").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('importing lpips needs torchvision')\n")
    (package / "weights" / "v0.1" / "alex.pth").touch()
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "lpips", raising=False)
    assert lpips_module._packaged_heads("alex") == package / "weights" / "v0.1" / "alex.pth"
    assert lpips_module._packaged_heads("vgg") is None and "lpips" not in sys.modules
