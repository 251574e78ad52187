"""Self-describing model files: save_model / load_model round trips, training checkpoints, published layouts."""

import json

import pytest
import torch

from cplir.engine.checkpoint import atomic_save, export_weights
from cplir.errors import CheckpointError
from cplir.models import build_model, load_model, save_model
from cplir.models.model_file import infer_spec
from cplir.models.weights import DEAD_PROMPTIR_LAYERS

CALIBRATION = {"prompt1": {"derain": [0.9, 0.1, 0.0, 0.0, 0.0]}}


def _same_output(a, b, x):
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_model_file_rebuilds_without_a_config(tiny_kwargs, tmp_path, suffix):
    torch.manual_seed(0)
    model = build_model("cplir", **tiny_kwargs, num_prompts=6).eval()
    path = save_model(model, tmp_path / f"m{suffix}", calibration=CALIBRATION)
    loaded = load_model(path)
    expected = {"name": "cplir", "args": {**tiny_kwargs, "num_prompts": 6}}
    assert json.loads(json.dumps(loaded.spec)) == json.loads(json.dumps(expected))
    assert loaded.calibration == CALIBRATION and not loaded.training
    _same_output(model, loaded, torch.rand(1, 3, 16, 16))


def test_save_model_never_overwrites(tiny_kwargs, tmp_path):
    model = build_model("promptir", **tiny_kwargs)
    path = save_model(model, tmp_path / "m.safetensors")
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="already exists"):
        save_model(model, path)
    assert path.read_bytes() == before
    save_model(model, path, overwrite=True)


def test_a_model_built_by_hand_is_refused(tmp_path):
    from cplir.models import PromptIR

    with pytest.raises(CheckpointError, match="build_model"):
        save_model(PromptIR(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 1, 2, 2)),
                   tmp_path / "m.pth")


@pytest.mark.parametrize("container,expected", [("state_dict", "promptir"), ("params", "cplir"),
                                                ("params_ema", "cplir")])
def test_published_layouts_infer_their_architecture(tiny_kwargs, tmp_path, container, expected):
    torch.manual_seed(1)
    model = build_model("promptir", **tiny_kwargs, num_prompts=4).eval()
    state = model.state_dict()
    if container == "state_dict":  # PromptIR's Lightning file: net. prefix, six unused layers
        state = {f"net.{k}": v for k, v in state.items()}
        state.update({f"net.{name}weight": torch.zeros(2, 2, 1, 1) for name in DEAD_PROMPTIR_LAYERS})
    atomic_save({container: state}, tmp_path / "w.ckpt")
    loaded = load_model(tmp_path / "w.ckpt")
    assert loaded.spec["name"] == expected
    assert loaded.spec["args"]["dim"] == tiny_kwargs["dim"] and loaded.spec["args"]["num_prompts"] == 4
    assert loaded.spec["args"]["num_blocks"] == [1, 1, 1, 1]
    if expected == "promptir":
        _same_output(model, loaded, torch.rand(1, 3, 16, 16))
    override = load_model(tmp_path / "w.ckpt", name="promptir")  # --model resolves the dense/sparse ambiguity
    _same_output(model, override, torch.rand(1, 3, 16, 16))


def test_unknown_architecture_asks_for_the_model_name(tmp_path):
    atomic_save({"conv.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="--arch"):
        load_model(tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="PromptIR/CPL"):
        infer_spec({"patch_embed.proj.weight": torch.zeros(8, 3, 3, 3)})


def test_export_refuses_to_write_onto_its_checkpoint(tmp_path):
    path = tmp_path / "iter.pth"
    atomic_save({"format": "cplir-checkpoint-1"}, path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="being exported"):
        export_weights(path, path)
    assert path.read_bytes() == before
