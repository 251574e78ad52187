"""Non-overlapping window partitioning and relative positions, shared by the window-attention backbones
(Swin Transformer, Liu et al. ICCV 2021): SwinIR, DehazeFormer and IDT."""

import torch


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/window * W/window, window, window, C), windows in raster order per image; contiguous,
    so callers may ``view`` it (``reshape`` alone can return a strided view, e.g. for one window per image row)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window, window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, window, window, C) or (B * nW, window², C) -> (B, H, W, C)."""
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.reshape(b, h // window, w // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def relative_offsets(window_h: int, window_w: int) -> torch.Tensor:
    """(N, N, 2) integer offsets (dy, dx) from token j to token i of a window_h x window_w window, N = h*w."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_h), torch.arange(window_w), indexing="ij"))
    coords = coords.flatten(1)
    return (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()


def relative_position_index(window_h: int, window_w: int, bound: int = 0) -> torch.Tensor:
    """(N, N) index into a ((2b-1)²)-row relative-position bias table, b = ``bound`` (default: the window).

    Offsets are clipped to ±(b-1) (IDT's ``k_bound``; a no-op when b covers the window, as in Swin).
    """
    bound_h, bound_w = (bound, bound) if bound else (window_h, window_w)
    offsets = relative_offsets(window_h, window_w)
    dy = offsets[..., 0].clamp(-bound_h + 1, bound_h - 1) + bound_h - 1
    dx = offsets[..., 1].clamp(-bound_w + 1, bound_w - 1) + bound_w - 1
    return dy * (2 * bound_w - 1) + dx


def image_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C) tokens in raster order."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_image(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H*W, C) tokens in raster order -> (B, C, H, W)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)
