"""loss.cpr.negative_grad: the gradient of the CPR term reaches the mismatched prompt components only when enabled."""

import pytest
import torch

from cplir.config import CPRConfig
from cplir.engine.objective import CPRTerm, StepInputs
from cplir.models import build_model

SEED = 7


def cpr_prompt_grads(tiny_kwargs, negative_grad: bool, batched: bool = True):
    """Gradient of the CPR term alone w.r.t. every block's prompt components, (P,) norms per block, and which
    components the positive pass and the negatives used: ``{block: (grad_norms, positive set, negative set)}``."""
    torch.manual_seed(0)
    net = build_model("cplir", **tiny_kwargs, num_prompts=5, top_k=1)
    section = CPRConfig(enabled=True, alpha=1.0, num_negatives=2, vgg_weights="random", layers=["relu1_1"],
                        layer_weights=[1.0], batched_negatives=batched, negative_grad=negative_grad)
    term = CPRTerm(section, "cpu")
    gen = torch.Generator().manual_seed(1)
    lq, gt = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)
    restored, routing, feats = net(lq, return_routing=True, return_features=True)
    out = term(StepInputs(lq, gt, restored, feats, net, 0, torch.Generator().manual_seed(SEED)))
    out["cpr"].backward()
    # the same uniforms the term drew: (m, n_blocks, B)
    draws = torch.rand(2, len(net.prompt_names), 2, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        negative_routing = [net(lq, mismatch=draws[j], return_routing=True)[1] for j in range(2)]
    result = {}
    for name in net.prompt_names:
        grad = getattr(net, name).prompt_param.grad
        norms = torch.zeros(5) if grad is None else grad[0].flatten(1).norm(dim=1)
        positive = set(routing[name]["indices"].flatten().tolist())
        negative = {i for r in negative_routing for i in r[name]["indices"].flatten().tolist()}
        result[name] = (norms, positive, negative)
    return result


def test_negatives_are_constants_by_default(tiny_kwargs):
    for norms, positive, negative in cpr_prompt_grads(tiny_kwargs, negative_grad=False).values():
        assert negative - positive, "the draws should pick components the positive pass did not use"
        for k in range(5):
            assert (norms[k] > 0) == (k in positive), k


@pytest.mark.parametrize("batched", [True, False])
def test_gradient_reaches_the_mismatched_components_when_enabled(tiny_kwargs, batched):
    for norms, positive, negative in cpr_prompt_grads(tiny_kwargs, negative_grad=True, batched=batched).values():
        for k in range(5):
            assert (norms[k] > 0) == (k in positive | negative), k


def test_batched_and_naive_negatives_give_the_same_gradient(tiny_kwargs):
    batched = cpr_prompt_grads(tiny_kwargs, negative_grad=True, batched=True)
    naive = cpr_prompt_grads(tiny_kwargs, negative_grad=True, batched=False)
    for name in batched:
        torch.testing.assert_close(batched[name][0], naive[name][0], rtol=1e-4, atol=1e-7)
