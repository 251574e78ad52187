"""Dense prompt block and Sparse Prompt Module: routing, sparsity, mismatched prompts."""

import pytest
import torch

from cplir.models import PromptGenBlock, SparsePromptModule, build_model


def make_pair(p=5, k=1, renormalize=False, c=8, s=6, lin=12, seed=0):
    torch.manual_seed(seed)
    dense = PromptGenBlock(c, p, s, lin)
    sparse = SparsePromptModule(c, p, s, lin, top_k=k, renormalize=renormalize)
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse


def test_sparse_with_all_components_equals_dense():
    dense, sparse = make_pair(p=5, k=5)
    x = torch.randn(3, 12, 10, 14)
    torch.testing.assert_close(sparse(x).prompt, dense(x).prompt, rtol=1e-5, atol=1e-6)


def test_top1_output_equals_weighted_single_component():
    _, sparse = make_pair(p=5, k=1)
    x = torch.randn(4, 12, 9, 7)
    out, probs, idx = sparse(x)
    assert idx.shape == (4, 1)
    assert torch.equal(idx[:, 0], probs.argmax(1))
    manual = torch.stack([probs[b, idx[b, 0]] * sparse.prompt_param[0, idx[b, 0]] for b in range(4)])
    torch.testing.assert_close(out, sparse.render(manual, (9, 7)))


def test_renormalised_top2_weights_sum_to_one():
    _, sparse = make_pair(p=6, k=2, renormalize=True)
    x = torch.randn(3, 12, 8, 8)
    out, probs, idx = sparse(x)
    w = probs.gather(1, idx)
    w = w / w.sum(1, keepdim=True)
    manual = (w[:, :, None, None, None] * sparse.prompt_param[0][idx]).sum(1)
    torch.testing.assert_close(out, sparse.render(manual, (8, 8)))


def test_renormalise_with_top1_is_refused():
    with pytest.raises(ValueError, match="router"):
        SparsePromptModule(8, 5, 6, 12, top_k=1, renormalize=True)
    with pytest.raises(ValueError, match="top_k"):
        SparsePromptModule(8, 5, 6, 12, top_k=6)


def test_top1_touches_only_selected_components():
    _, sparse = make_pair(p=5, k=1)
    torch.manual_seed(3)
    x = torch.randn(2, 12, 8, 8)
    out = sparse(x)
    out.prompt.square().sum().backward()
    chosen = set(out.indices.flatten().tolist())
    grads = sparse.prompt_param.grad[0].flatten(1).abs().sum(1)
    for j in range(5):
        if j in chosen:
            assert grads[j] > 0, j
        else:
            assert grads[j] == 0, j
    assert sparse.linear_layer.weight.grad.abs().sum() > 0  # the router learns through the kept softmax value


@pytest.mark.parametrize("p,k", [(5, 1), (5, 2), (10, 3), (3, 2)])
def test_mismatched_prompts_never_use_topk(p, k):
    _, sparse = make_pair(p=p, k=k)
    x = torch.randn(16, 12, 8, 8)
    top = sparse.route(x).topk(k, dim=1).indices
    chosen = [set() for _ in range(16)]
    for j in range(p - k):  # one draw aimed at each position of the non-top-k list
        idx = sparse(x, mismatch=torch.full((16,), (j + 0.5) / (p - k))).indices
        assert idx.shape == (16, 1)
        assert not (idx == top).any()
        for b in range(16):
            chosen[b].add(int(idx[b, 0]))
    for b in range(16):  # every component outside the top-k is reachable, and only those
        assert chosen[b] == set(range(p)) - set(top[b].tolist())
    gen = torch.Generator().manual_seed(1)
    for _ in range(10):
        assert not (sparse(x, mismatch=torch.rand(16, generator=gen)).indices == top).any()


def test_mismatched_weight_is_own_softmax_value():
    _, sparse = make_pair(p=5, k=1)
    x = torch.randn(3, 12, 8, 8)
    u = torch.tensor([0.0, 0.5, 0.99])
    out, probs, idx = sparse(x, mismatch=u)
    idx = idx[:, 0]
    top = probs.argmax(1)
    for b in range(3):
        rest = [j for j in range(5) if j != top[b]]
        assert idx[b] == rest[int(u[b] * 4)]
    manual = torch.stack([probs[b, idx[b]] * sparse.prompt_param[0, idx[b]] for b in range(3)])
    torch.testing.assert_close(out, sparse.render(manual, (8, 8)))


def test_dense_block_has_no_mismatch_mode():
    dense, _ = make_pair()
    with pytest.raises(ValueError, match="sparse"):
        dense(torch.randn(1, 12, 8, 8), mismatch=torch.rand(1))


def test_model_mismatch_is_reproducible_from_generator(tiny_kwargs):
    model = build_model("cplir", **tiny_kwargs).eval()
    x = torch.rand(3, 3, 16, 24)
    with torch.no_grad():
        normal, routing = model(x, return_routing=True)
        top = {n: r["indices"] for n, r in routing.items()}
        a, routing_a = model(x, mismatch=torch.Generator().manual_seed(7), return_routing=True)
        chosen_a = {n: r["indices"] for n, r in routing_a.items()}
        b, routing_b = model(x, mismatch=torch.Generator().manual_seed(7), return_routing=True)
        chosen_b = {n: r["indices"] for n, r in routing_b.items()}
        c = model(x, mismatch=model.draw_mismatch(3, torch.Generator().manual_seed(7)))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    assert not torch.allclose(a, normal)
    for name in top:
        assert torch.equal(chosen_a[name], chosen_b[name])
        assert not (chosen_a[name] == top[name]).any()


def test_model_routing_exposes_all_blocks(tiny_kwargs):
    for name, k in (("promptir", 1), ("cplir", 2)):
        model = build_model(name, **tiny_kwargs, num_prompts=6, top_k=k).eval() if name == "cplir" else \
            build_model(name, **tiny_kwargs, num_prompts=6).eval()
        out, routing = model(torch.rand(2, 3, 16, 16), return_routing=True)
        assert out.shape == (2, 3, 16, 16)
        assert list(routing) == ["prompt3", "prompt2", "prompt1"]
        for r in routing.values():
            assert r["probs"].shape == (2, 6)
            torch.testing.assert_close(r["probs"].sum(1), torch.ones(2))
            assert r["indices"].shape == (2, k)


def test_sparse_inference_cost_does_not_grow_with_prompts(tiny_kwargs):
    from torch.utils.flop_counter import FlopCounterMode

    def flops(name, p):
        model = build_model(name, **tiny_kwargs, num_prompts=p).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.rand(1, 3, 16, 16))
        return counter.get_total_flops()

    # Only the router's linear layer (lin_dim x P per block) grows with P: dim*(8 + 4 + 2) inputs in all.
    router_growth = 2 * tiny_kwargs["dim"] * (8 + 4 + 2) * (15 - 5)
    assert flops("cplir", 15) - flops("cplir", 5) == router_growth
    assert flops("promptir", 15) > flops("promptir", 5)  # dense mixing multiplies every component


@pytest.mark.parametrize("name", ["promptir", "cplir"])
def test_imposed_routing_replaces_the_router(tiny_kwargs, name):
    """Routing computed on one input and imposed on another restores the second with the first's prompts."""
    torch.manual_seed(0)
    model = build_model(name, **tiny_kwargs).eval()
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        routing_a = model.route(a)
        out_b_own, own = model(b, return_routing=True)
        out_b_with_a, used = model(b, routing=routing_a, return_routing=True)
        again = model(a, routing=routing_a)
    torch.testing.assert_close(again, model(a).detach())  # imposing a's own routing changes nothing
    for block in routing_a:
        torch.testing.assert_close(used[block]["probs"], routing_a[block])
    assert any(not torch.equal(own[n]["probs"], routing_a[n]) for n in routing_a)
    assert not torch.allclose(out_b_own, out_b_with_a)


def test_negative_passes_do_not_change_what_the_positive_reported(tiny_kwargs):
    """Routing is returned per call: a mismatched pass after the positive one cannot overwrite its record."""
    model = build_model("cplir", **tiny_kwargs).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        _, positive = model(x, return_routing=True)
        saved = {n: r["indices"].clone() for n, r in positive.items()}
        model(x, mismatch=torch.Generator().manual_seed(3))
    assert all(torch.equal(positive[n]["indices"], saved[n]) for n in saved)
    assert all(torch.equal(positive[n]["indices"][:, 0], positive[n]["probs"].argmax(1)) for n in saved)


def test_bad_routing_and_mismatch_inputs_are_refused(tiny_kwargs):
    from cplir.errors import InputSizeError

    model = build_model("cplir", **tiny_kwargs).eval()
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(InputSizeError, match="prompt blocks"):
        model(x, routing={"prompt9": torch.rand(2, 5)})
    with pytest.raises(InputSizeError, match=r"\(3, 2\)"):
        model(x, mismatch=torch.rand(2, 2))
