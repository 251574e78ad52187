"""Importing published PromptIR / CPLIR checkpoints and plain state dicts."""

import pytest
import torch

from cplir.errors import CheckpointError
from cplir.models import build_model, load_weights, read_state_dict


def dead_layers(dim):
    """The six layers the published PromptIR builds but never uses, in its key layout (scaled with dim)."""
    shapes = {"chnl_reduce1": (64, 64), "chnl_reduce2": (128, 128), "chnl_reduce3": (256, 320),
              "reduce_noise_channel_1": (dim, dim + 64), "reduce_noise_channel_2": (2 * dim, 2 * dim + 128),
              "reduce_noise_channel_3": (4 * dim, 4 * dim + 256)}
    return {f"{name}.weight": torch.randn(o, i, 1, 1) for name, (o, i) in shapes.items()}


@pytest.fixture
def trained(tiny_kwargs):
    torch.manual_seed(0)
    model = build_model("promptir", **tiny_kwargs).eval()
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    return model


def outputs(model, x):
    with torch.no_grad():
        return model(x)


def test_lightning_checkpoint_round_trip(trained, tiny_kwargs, tmp_path):
    sd = {f"net.{k}": v for k, v in trained.state_dict().items()}
    sd.update({f"net.{k}": v for k, v in dead_layers(tiny_kwargs["dim"]).items()})
    path = tmp_path / "epoch=119-step=534000.ckpt"
    torch.save({"epoch": 119, "global_step": 534000, "pytorch-lightning_version": "2.0.0", "state_dict": sd,
                "optimizer_states": [], "lr_schedulers": []}, path)
    fresh = load_weights(build_model("promptir", **tiny_kwargs).eval(), path)
    x = torch.rand(2, 3, 16, 24)
    torch.testing.assert_close(outputs(fresh, x), outputs(trained, x), rtol=0, atol=0)
    assert not any(k.startswith(("chnl_reduce", "reduce_noise_channel")) for k in read_state_dict(path))


def test_promptir_weights_load_into_sparse_model(trained, tiny_kwargs, tmp_path):
    path = tmp_path / "promptir.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in trained.state_dict().items()}}, path)
    sparse = load_weights(build_model("cplir", **tiny_kwargs), path)
    for k, v in trained.state_dict().items():
        assert torch.equal(sparse.state_dict()[k], v)


def test_basicsr_checkpoint_prefers_ema(trained, tiny_kwargs, tmp_path):
    ema = {k: v + 1 for k, v in trained.state_dict().items()}
    path = tmp_path / "net_g_latest.pth"
    torch.save({"params": trained.state_dict(), "params_ema": ema}, path)
    model = load_weights(build_model("cplir", **tiny_kwargs), path)
    assert torch.equal(model.state_dict()["output.weight"], ema["output.weight"])
    path2 = tmp_path / "params_only.pth"
    torch.save({"params": trained.state_dict()}, path2)
    model = load_weights(build_model("cplir", **tiny_kwargs), path2)
    assert torch.equal(model.state_dict()["output.weight"], trained.state_dict()["output.weight"])


def test_plain_state_dict_and_ddp_prefix(trained, tiny_kwargs, tmp_path):
    x = torch.rand(1, 3, 16, 16)
    for i, sd in enumerate([trained.state_dict(), {f"module.{k}": v for k, v in trained.state_dict().items()}]):
        path = tmp_path / f"plain{i}.pth"
        torch.save(sd, path)
        model = load_weights(build_model("promptir", **tiny_kwargs).eval(), path)
        torch.testing.assert_close(outputs(model, x), outputs(trained, x), rtol=0, atol=0)


def test_mismatch_names_missing_and_unexpected_keys(trained, tiny_kwargs):
    sd = dict(trained.state_dict())
    del sd["output.weight"]
    sd["extra_head.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"1 missing keys: output\.weight.*1 unexpected keys: extra_head\.weight"):
        load_weights(build_model("promptir", **tiny_kwargs), sd)


def test_wrong_configuration_is_named(trained, tiny_kwargs):
    with pytest.raises(CheckpointError, match=r"shape mismatches: .*prompt1\.prompt_param.*num_prompts"):
        load_weights(build_model("promptir", **tiny_kwargs, num_prompts=10), trained.state_dict())
    with pytest.raises(CheckpointError, match="missing keys"):
        load_weights(build_model("promptir", **dict(tiny_kwargs, num_blocks=(2, 1, 1, 1))), trained.state_dict())


def test_unreadable_files(tmp_path, tiny_kwargs):
    model = build_model("promptir", **tiny_kwargs)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(model, tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_weights(model, junk)
    good = tmp_path / "good.pth"
    torch.save(model.state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        load_weights(model, truncated)
    torch.save({"weights": [1, 2, 3]}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="not a tensor"):
        load_weights(model, tmp_path / "odd.pth")


def test_pickled_objects_are_not_executed(tmp_path, tiny_kwargs):
    path = tmp_path / "objects.pth"
    torch.save({"state_dict": {}, "hparams": CustomObject()}, path)
    with pytest.raises(CheckpointError, match="re-save just its weights") as caught:
        load_weights(build_model("promptir", **tiny_kwargs), path)
    assert "CustomObject" in str(caught.value) and "weights_only" not in str(caught.value)


class CustomObject:
    pass
