"""NegativeModelBank: random start, blending, refresh schedule, frozen state, checkpoints, DDP unwrap; the adaptive
refresh rule; networks with integer buffers and parameters."""

import re

import pytest
import torch
from torch import nn

from cplir.config import SPNConfig, config_from_dict
from cplir.engine.negative_models import NegativeModelBank
from cplir.engine.negative_refresh import AdaptiveRefresh, error_spread
from cplir.engine.objective import SPNTerm, StepInputs
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


# --- the adaptive refresh rule (loss.spn.refresh: adaptive) -------------------------------------------------------
def with_spread(gt, spreads):
    """A restoration of ``gt`` (B, C, H, W) whose error ``2·(I − y)`` has unbiased std ``spreads[b]`` in sample b."""
    noise = torch.randn(gt.shape, generator=torch.Generator().manual_seed(len(spreads)))
    noise = (noise - noise.mean((1, 2, 3), keepdim=True)) / noise.std((1, 2, 3), keepdim=True)
    return gt + 0.5 * torch.tensor(spreads).view(-1, 1, 1, 1) * noise


def test_adaptive_rule_refreshes_one_model_round_robin_when_the_batch_mean_spread_exceeds_the_threshold():
    model = tiny_model()
    bank = NegativeModelBank(model, intervals=(1, 1, 1), seed=0)  # K = 3; the intervals are not used
    rule = AdaptiveRefresh(threshold=0.022, decay=0.001)
    gt = torch.rand(2, 3, 8, 8)
    sequence = [  # per-sample spreads of each step: the batch mean decides (not the largest sample)
        (0.03, 0.03), (0.01, 0.01), (0.0221, 0.0221), (0.0219, 0.0219), (0.04, 0.003), (0.01, 0.04), (0.5, 0.5),
        (0.0, 0.0), (0.1, 0.1)]
    refreshed_models = []
    for spreads in sequence:
        perturb(model, 0.1)
        old = [state(negative) for negative in bank.models]
        restored = with_spread(gt, spreads)
        torch.testing.assert_close(error_spread(restored, gt), torch.tensor(sum(spreads) / 2))
        logged = rule.during_step(bank, model, restored, gt)
        changed = [i for i, negative in enumerate(bank.models)
                   if any(not torch.equal(t, old[i][k]) for k, t in negative.state_dict().items())]
        assert logged["spn_refreshed"].item() == float(bool(changed))
        refreshed_models.append(changed)
        net = model.state_dict()
        for i in changed:  # neg = 0.001·neg + 0.999·net, from the weights that produced this output
            for name, tensor in bank.models[i].state_dict().items():
                expected = 0.001 * old[i][name] + 0.999 * net[name] if tensor.is_floating_point() else net[name]
                torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-6)
        assert rule.after_step(bank, 1, model) == []  # no periodic refresh
    assert refreshed_models == [[0], [], [1], [], [], [2], [0], [], [1]]
    assert rule.refreshes == 5


def spn_term(net, **section):
    spn = SPNConfig(enabled=True, intervals=[1, 1], decays=[0.1], vgg_weights="random", layers=["relu1_2"],
                    layer_weights=[1.0], **section)
    return SPNTerm(spn, net, seed=3)


def spn_step(term, net, spread):
    gt = torch.rand(1, 3, 8, 8)
    lq = torch.rand(1, 3, 8, 8)
    return term(StepInputs(lq, gt, with_spread(gt, [spread]), None, net, 0, torch.Generator()))


def test_adaptive_state_survives_a_checkpoint_and_is_refused_by_the_interval_rule():
    model = tiny_model()
    term = spn_term(model, refresh="adaptive", adaptive_threshold=0.05)
    out = spn_step(term, model, 0.2)
    assert out["spn_refreshed"].item() == 1 and out["spn_spread"].item() == pytest.approx(0.2, rel=1e-4)
    assert spn_step(term, model, 0.01)["spn_refreshed"].item() == 0
    saved = term.checkpoint_state()
    assert saved["refresh.refreshes"].item() == 1 and "models.1.0.weight" in saved

    resumed = spn_term(tiny_model(seed=4), refresh="adaptive", adaptive_threshold=0.05)
    resumed.restore_state(saved)
    assert resumed.refresh.refreshes == 1
    assert all(torch.equal(a, b) for a, b in zip(state(resumed.bank).values(), state(term.bank).values()))
    perturb(model, 0.3)
    before = state(resumed.bank.models[0])
    spn_step(resumed, model, 0.2)  # the round robin continues with model 1, not model 0
    assert all(torch.equal(t, before[k]) for k, t in resumed.bank.models[0].state_dict().items())
    torch.testing.assert_close(resumed.bank.models[1][0].weight,
                               0.001 * term.bank.models[1][0].weight + 0.999 * model[0].weight, rtol=0, atol=1e-6)

    with pytest.raises(CheckpointError, match="loss.spn.refresh"):
        spn_term(tiny_model()).restore_state(saved)
    with pytest.raises(CheckpointError, match="loss.spn.refresh"):
        spn_term(tiny_model(), refresh="adaptive").restore_state(spn_term(tiny_model()).checkpoint_state())


def test_interval_rule_keeps_the_published_checkpoint_layout():
    model = tiny_model()
    term = spn_term(model)
    before = state(term.bank)
    out = spn_step(term, model, 0.5)
    assert "spn_refreshed" not in out and all(torch.equal(v, before[k]) for k, v in state(term.bank).items())
    assert term.checkpoint_state().keys() == term.bank.state_dict().keys()  # no refresh state


@pytest.mark.parametrize("key, value, message", [
    ("refresh", "sometimes", "loss.spn.refresh must be one of interval, adaptive"),
    ("adaptive_threshold", -0.1, "loss.spn.adaptive_threshold must be >= 0"),
    ("adaptive_decay", 1.5, "must lie in [0, 1]"),
    ("decays", [2.0], "must lie in [0, 1]"),
    ("intervals", [], "at least one interval"),
])
def test_spn_refresh_settings_are_validated(key, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict({"loss": {"spn": {"enabled": True, key: value}}})


# --- networks whose state is not all floating point ---------------------------------------------------------------
class Counter(nn.Module):
    """A layer with an integer buffer and an integer (frozen) parameter, as quantised or bookkeeping layers have."""

    def __init__(self):
        super().__init__()
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self.register_buffer("flags", torch.tensor([True, False]))
        self.offset = nn.Parameter(torch.tensor([3], dtype=torch.int32), requires_grad=False)

    def forward(self, x):
        return x + self.offset.float() * 0.01


@pytest.mark.parametrize("refresh", ["interval", "adaptive"])
def test_integer_buffers_and_parameters_are_copied_never_blended(refresh):
    model = nn.Sequential(tiny_model(), Counter())
    term = spn_term(model, refresh=refresh, adaptive_threshold=0.0)
    negative = term.bank.models[0][1]
    assert negative.steps.dtype == torch.int64 and negative.offset.dtype == torch.int32
    with torch.no_grad():
        model[1].steps.fill_(7)
        model[1].flags.logical_not_()
        model[1].offset.fill_(-2)
        model[0][1].num_batches_tracked.fill_(11)
    for _ in term.bank.models:  # adaptive: one model per step (threshold 0); interval: all after step 1
        assert torch.isfinite(spn_step(term, model, 0.5)["spn"])
    term.after_step(1, model)
    for negative in term.bank.models:
        assert negative[1].steps.item() == 7 and negative[1].flags.tolist() == [False, True]
        assert negative[1].offset.item() == -2 and negative[0][1].num_batches_tracked.item() == 11
