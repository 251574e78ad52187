"""NegativeModelBank: random start, blending, refresh schedule, frozen state, checkpoints, DDP unwrap."""

import pytest
import torch
from torch import nn

from cplir.engine.negative_models import NegativeModelBank
from cplir.errors import CheckpointError, ConfigError


class PromptShift(nn.Module):
    """A custom module without reset_parameters: a prompt (redrawn) and a scale (kept)."""

    def __init__(self, channels):
        super().__init__()
        self.prompt_param = nn.Parameter(torch.full((1, channels, 1, 1), 5.0))
        self.scale = nn.Parameter(torch.full((1,), 2.0))

    def forward(self, x):
        return x * self.scale + self.prompt_param


class Wrapper(nn.Module):
    """Stands in for DistributedDataParallel: the network sits in ``.module``."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), PromptShift(4), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)
    )


def state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def perturb(model, amount):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(amount * torch.randn_like(p))
        model[1].running_mean.add_(amount)
        model[1].num_batches_tracked.add_(1)


def test_start_is_a_blend_of_random_init_and_the_model():
    model = tiny_model()
    pure = NegativeModelBank(model, intervals=(1, 2), start=1.0, seed=7)
    blended = NegativeModelBank(model, intervals=(1, 2), start=0.25, seed=7)
    for random_net, negative in zip(pure.models, blended.models):
        for (name, r), n, m in zip(random_net.state_dict().items(), negative.state_dict().values(),
                                   model.state_dict().values()):
            if r.is_floating_point():
                torch.testing.assert_close(n, 0.25 * r + 0.75 * m, rtol=0, atol=1e-6, msg=name)
    random_net = pure.models[0]
    assert not torch.equal(random_net[0].weight, model[0].weight)  # conv re-initialised
    assert not torch.equal(pure.models[0][0].weight, pure.models[1][0].weight)  # each copy its own draw
    prompt = random_net[2].prompt_param
    assert (prompt >= 0).all() and (prompt < 1).all()  # PromptIR's U[0, 1) prompt init
    assert torch.equal(random_net[2].scale, model[2].scale)  # constant-initialised scale kept


def test_seeded_init_is_deterministic_and_leaves_global_rng_alone():
    model = tiny_model()
    before = torch.get_rng_state()
    a = NegativeModelBank(model, intervals=(3,), seed=1)
    assert torch.equal(torch.get_rng_state(), before)
    b = NegativeModelBank(model, intervals=(3,), seed=1)
    c = NegativeModelBank(model, intervals=(3,), seed=2)
    assert all(torch.equal(x, y) for x, y in zip(state(a).values(), state(b).values()))
    assert not torch.equal(a.models[0][0].weight, c.models[0][0].weight)


def test_refresh_schedule_and_blend():
    model = tiny_model()
    decays = (0.5, 0.25, 0.75)
    bank = NegativeModelBank(model, intervals=(1, 2, 3), decays=decays, seed=0)
    assert bank.step(0, model) == []
    schedule = {}
    for iteration in range(1, 7):
        perturb(model, 0.1)
        old = [state(negative) for negative in bank.models]
        refreshed = bank.step(iteration, model)
        schedule[iteration] = refreshed
        net = model.state_dict()
        for i, negative in enumerate(bank.models):
            for name, tensor in negative.state_dict().items():
                if i not in refreshed:
                    assert torch.equal(tensor, old[i][name])
                elif tensor.is_floating_point():
                    expected = decays[i] * old[i][name] + (1 - decays[i]) * net[name]
                    torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-6)
                else:
                    assert torch.equal(tensor, net[name])  # BatchNorm's counter is copied
    assert schedule == {1: [0], 2: [0, 1], 3: [0, 2], 4: [0, 1], 5: [0], 6: [0, 1, 2]}


def test_bank_is_frozen_and_in_eval_mode():
    model = tiny_model()
    bank = NegativeModelBank(model, intervals=(1, 2), seed=0)
    bank.train()
    assert not any(m.training for m in bank.modules())
    assert not any(p.requires_grad for p in bank.parameters())
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    outputs = bank.forward_all(x)
    assert len(outputs) == 2 and not any(o.requires_grad for o in outputs)
    with torch.no_grad():
        torch.testing.assert_close(outputs[1], bank.models[1](x))
    # Eval mode: BatchNorm uses running statistics, so one sample's output does not depend on the others.
    torch.testing.assert_close(bank.forward_all(x[:1])[0], outputs[0][:1])
    assert model[0].weight.requires_grad  # the trained network is untouched


def test_state_dict_round_trip():
    model = tiny_model()
    bank = NegativeModelBank(model, intervals=(1, 2), seed=0)
    perturb(model, 0.3)
    bank.step(2, model)
    restored = NegativeModelBank(tiny_model(seed=1), intervals=(1, 2), seed=5)
    restored.load_state_dict(bank.state_dict())
    assert all(torch.equal(x, y) for x, y in zip(state(bank).values(), state(restored).values()))
    x = torch.rand(1, 3, 8, 8)
    assert all(torch.equal(a, b) for a, b in zip(bank.forward_all(x), restored.forward_all(x)))
    with pytest.raises(CheckpointError, match="negative model bank"):
        NegativeModelBank(model, intervals=(1,), seed=0).load_state_dict(bank.state_dict())


def test_ddp_style_wrapper_is_unwrapped():
    model = tiny_model()
    plain = NegativeModelBank(model, intervals=(1,), seed=0)
    wrapped = NegativeModelBank(Wrapper(model), intervals=(1,), seed=0)
    assert state(plain).keys() == state(wrapped).keys() and "models.0.0.weight" in state(plain)
    perturb(model, 0.2)
    plain.step(1, model)
    wrapped.step(1, Wrapper(model))
    assert all(torch.equal(x, y) for x, y in zip(state(plain).values(), state(wrapped).values()))


def test_configuration_errors():
    model = tiny_model()
    assert NegativeModelBank(model, intervals=(1, 2, 3), decays=0.3).decays == (0.3, 0.3, 0.3)
    assert NegativeModelBank(model).intervals == (100, 200, 500, 1000)
    with pytest.raises(ConfigError, match="one per interval"):
        NegativeModelBank(model, intervals=(1, 2, 3), decays=(0.1, 0.2))
    with pytest.raises(ConfigError):
        NegativeModelBank(model, intervals=(0,))
    with pytest.raises(ConfigError):
        NegativeModelBank(model, intervals=(1,), start=1.5)
    bank = NegativeModelBank(model, intervals=(1,))
    with pytest.raises(ConfigError, match="architecture"):
        bank.step(1, nn.Sequential(nn.Conv2d(3, 3, 1)))
