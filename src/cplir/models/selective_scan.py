"""Mamba's selective scan in plain PyTorch (runs on any device, no custom kernels).

The recurrence (Gu & Dao, "Mamba", Algorithm 2) for every channel d and state n::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t,        y_t = <C_t, h_t> + D * u_t,

with ``delta = softplus(delta + delta_bias)``: the arithmetic of mamba_ssm's ``selective_scan_ref``, whose loop
over t takes L small steps. Here the sequence is cut into segments, and each segment into about sqrt(length)
chunks that are run side by side: one loop over the positions inside a chunk (all chunks at once), then one over
the chunks to carry the state across, then the carried state decayed into every step. That is about 2·sqrt(L)
vectorised steps instead of L, and a few passes over the states; the sums per step are the reference's, so the
results agree with it to float rounding. Decays lie in (0, 1], so nothing overflows.

The memory holds one segment's (b, G, d, segment, N) states at a time, with gradient too: each segment is
recomputed in the backward pass (activation checkpointing), which costs one more forward scan. The reference
keeps the whole (b, G, d, L, N) state tensor, several times over under autograd.
"""

import math

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def _scan_segment(decay: torch.Tensor, inp: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """States of ``h_t = decay_t * h_{t-1} + inp_t`` along dim -2 of (..., S, N) tensors, from ``state`` (..., N)
    before the first step."""
    steps = decay.shape[-2]
    width = math.isqrt(steps - 1) + 1  # chunk length, about sqrt(S)
    pad = -steps % width
    decay = F.pad(decay, (0, 0, 0, pad), value=1.0).unflatten(-2, (-1, width))  # (..., chunks, width, N)
    inp = F.pad(inp, (0, 0, 0, pad)).unflatten(-2, (-1, width))
    # unbind, not indexing: the gradient of an indexed slice is a full-size tensor per step
    decays, inps = decay.unbind(-2), inp.unbind(-2)
    h = inps[0]
    local = [h]
    for t in range(1, width):  # every chunk from a zero state, side by side
        h = decays[t] * h + inps[t]
        local.append(h)
    local = torch.stack(local, dim=-2)
    through = decay.cumprod(dim=-2)  # decay from each chunk's start to each of its steps
    entering = []
    for chunk_decay, chunk_end in zip(through[..., -1, :].unbind(-2), local[..., -1, :].unbind(-2)):
        entering.append(state)  # the true state entering each chunk
        state = chunk_decay * state + chunk_end
    states = local + through * torch.stack(entering, dim=-2)[..., None, :]
    return states.flatten(-3, -2)[..., :steps, :]


def _segment(dt: torch.Tensor, u: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
             state: torch.Tensor):
    """One segment: dt, u (b, G, d, S); A (G, d, 1, N); B, C (b, G, 1, S, N); state (b, G, d, N) before it.
    Returns y without the skip term (b, G, d, S) and the state after the segment."""
    dt = dt[..., None]
    states = _scan_segment(torch.exp(dt * A), dt * u[..., None] * B, state)
    return torch.einsum("bgdsn,bgdsn->bgds", states, C.expand_as(states)), states[..., -1, :]


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor, delta_bias: torch.Tensor, segment: int = 1024) -> torch.Tensor:
    """Selective scan with grouped input-dependent B and C, softplus on delta.

    Args:
        u, delta: (b, G*d, L); A: (G*d, N), real (negative); B, C: (b, G, N, L), group g serving channels
        g*d .. (g+1)*d - 1; D, delta_bias: (G*d,).
        segment: steps whose states exist at once; the state is carried from segment to segment. With gradient,
            each segment's states are recomputed in the backward pass instead of kept (activation checkpointing),
            so memory grows with L·d, not L·d·N.
    Returns y (b, G*d, L), float32.
    """
    b, channels, length = u.shape
    groups, n = B.shape[1], A.shape[1]
    d = channels // groups
    u = u.float().view(b, groups, d, length)
    delta = F.softplus(delta.float() + delta_bias.float()[:, None]).view(b, groups, d, length)
    A = A.float().view(groups, d, 1, n)
    B = B.float().transpose(-1, -2)[:, :, None]  # (b, G, 1, L, N)
    C = C.float().transpose(-1, -2)[:, :, None]
    state = u.new_zeros(b, groups, d, n)
    ys = []
    for start in range(0, length, segment):
        part = slice(start, start + segment)
        args = (delta[..., part], u[..., part], A, B[..., part, :], C[..., part, :], state)
        if torch.is_grad_enabled():
            y, state = checkpoint(_segment, *args, use_reentrant=False)
        else:
            y, state = _segment(*args)
        ys.append(y)
    y = torch.cat(ys, dim=-1) + u * D.float().view(groups, d, 1)
    return y.reshape(b, channels, length)
