"""Swin (shifted-)window multi-head self-attention, written by hand and vectorised.

This is the attention module alone (no LayerNorm, residual, MLP or relative position bias). For an input
``x`` of shape (B, H, W, C), a window (wh, ww) and ``num_heads`` heads:

1. Pad right/bottom with zeros so H and W are multiples of the window (as Swin does); crop at the end.
2. If ``shift``: cyclic shift by (-(wh // 2), -(ww // 2)) over (H, W) with ``torch.roll``.
3. Partition into non-overlapping wh x ww windows.
4. q, k, v = three ``IdentityMLP(C)``; channels split into ``num_heads`` heads of C / num_heads.
5. Scores q k^T / sqrt(C / num_heads) plus, if shifted, the region mask of the official implementation
   (-100 between tokens from different regions of the shifted, padded map; per axis the regions are the
   slices (0, -w), (-w, -s), (-s, None)); softmax over keys.
6. Weighted sum of v, heads concatenated back to C and merged by ``HeaderConcatMLP(C, C)``.
7. Reverse partition, reverse shift, crop the padding.

All windows and heads are processed in batched tensor ops (no Python loop over them). The Linear layers are
initialised to ones, as in the course assignment, so the result is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "IdentityMLP",
    "HeaderConcatMLP",
    "ShiftedWindowAttention",
    "cal_window_transformer_block",
    "shifted_window_mask",
]

# Value the official Swin implementation adds to scores of token pairs from different regions.
MASK_VALUE = -100.0


class _OnesLinear(nn.Module):
    """nn.Linear whose weight and bias start at ones, as the assignment defines its MLPs."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Linear(in_dim, out_dim)
        self.initialize_weights_ones()

    @property
    def linear(self) -> nn.Linear:
        """Alias of ``self.mlp`` (the assignment's attribute name, kept for state-dict compatibility)."""
        return self.mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)

    def initialize_weights_ones(self) -> None:
        """Set weight and bias to ones (the assignment's fixed init, which makes results checkable)."""
        nn.init.ones_(self.mlp.weight)
        nn.init.ones_(self.mlp.bias)


class IdentityMLP(_OnesLinear):
    """Linear(dim, dim) used for q, k and v; weights and bias are ones so outputs are deterministic."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, dim)


class HeaderConcatMLP(_OnesLinear):
    """Linear(in_dim, out_dim) merging the concatenated heads; weights and bias are ones."""


def _check_window(window_size: Sequence[int]) -> tuple[int, int]:
    """Return the window as a tuple of two positive ints, raising ValueError otherwise."""
    try:
        wh, ww = window_size
    except (TypeError, ValueError):
        raise ValueError(f"window_size must be a pair (wh, ww), got {window_size!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (wh, ww)):
        raise ValueError(f"window_size entries must be ints, got {window_size!r}")
    if wh <= 0 or ww <= 0:
        raise ValueError(f"window_size entries must be positive, got {window_size!r}")
    return wh, ww


def _check_heads(dim: int, num_heads: int) -> None:
    """Heads must be positive and split the channels evenly."""
    if num_heads <= 0:
        raise ValueError(f"num_heads must be > 0, got {num_heads}")
    if dim % num_heads != 0:
        raise ValueError(f"channels C={dim} must be divisible by num_heads={num_heads}")


def _check_input(x: torch.Tensor, window_size: tuple[int, int]) -> None:
    """x must be a floating (B, H, W, C) tensor at least as large as the window."""
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (B, H, W, C), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got {x.dtype}")
    _, h, w, _ = x.shape
    wh, ww = window_size
    if wh > h or ww > w:
        raise ValueError(f"window_size {window_size} must not be larger than the image ({h}, {w})")


def _region_ids(size: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """Region label per position of one padded axis: slices (0,-w), (-w,-s), (-s,None) as in Swin."""
    ids = torch.zeros(size, dtype=torch.long, device=device)
    if shift > 0:
        ids[size - window : size - shift] = 1
        ids[size - shift :] = 2
    return ids


def _partition(x: torch.Tensor, wh: int, ww: int) -> torch.Tensor:
    """(B, Hp, Wp, C) -> (B, nW, wh*ww, C), windows in row-major order."""
    b, hp, wp, c = x.shape
    x = x.reshape(b, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (hp // wh) * (wp // ww), wh * ww, c)


def _reverse(windows: torch.Tensor, hp: int, wp: int, wh: int, ww: int) -> torch.Tensor:
    """(B, nW, wh*ww, C) -> (B, Hp, Wp, C), inverse of ``_partition``."""
    b, _, _, c = windows.shape
    x = windows.reshape(b, hp // wh, wp // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hp, wp, c)


def shifted_window_mask(
    hp: int,
    wp: int,
    window_size: tuple[int, int],
    shift_size: tuple[int, int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Additive mask (nW, N, N) for the shifted, padded (hp, wp) map: -100 across regions, else 0.

    Tokens that the cyclic shift brought next to each other from opposite image borders must not attend to
    each other; the mask keeps attention within each region of every window.
    """
    wh, ww = window_size
    device = torch.device(device) if device is not None else torch.device("cpu")
    rows = _region_ids(hp, wh, shift_size[0], device)
    cols = _region_ids(wp, ww, shift_size[1], device)
    img = (rows[:, None] * 3 + cols[None, :])[None, :, :, None]  # (1, Hp, Wp, 1)
    ids = _partition(img, wh, ww)[0, :, :, 0]  # (nW, N)
    different = ids[:, :, None] != ids[:, None, :]
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(different, torch.full((), MASK_VALUE, dtype=dtype, device=device), zero)


class ShiftedWindowAttention(nn.Module):
    """Swin window attention (optionally shifted) over a (B, H, W, C) map; see the module docstring."""

    def __init__(self, dim: int, window_size: tuple[int, int], num_heads: int, shift: bool = True) -> None:
        super().__init__()
        self.window_size = _check_window(window_size)
        _check_heads(dim, num_heads)
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.shift = shift
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.q = IdentityMLP(dim)
        self.k = IdentityMLP(dim)
        self.v = IdentityMLP(dim)
        self.proj = HeaderConcatMLP(dim, dim)

    @property
    def shift_size(self) -> tuple[int, int]:
        """Cyclic shift per axis: half the window when shifting, else zero."""
        if not self.shift:
            return (0, 0)
        return (self.window_size[0] // 2, self.window_size[1] // 2)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}, shift={self.shift}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.window_size)
        b, h, w, c = x.shape
        if c != self.dim:
            raise ValueError(f"x has C={c} channels, module expects dim={self.dim}")
        wh, ww = self.window_size
        sh, sw = self.shift_size

        # 1. zero-pad right/bottom to whole windows
        pad_h, pad_w = (-h) % wh, (-w) % ww
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        # 2. cyclic shift
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        # 3. partition: (B, nW, N, C)
        win = _partition(x, wh, ww)
        nw, n = win.shape[1], win.shape[2]

        # 4. q, k, v split into heads: (B, nW, heads, N, d)
        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, nw, n, self.num_heads, self.head_dim).transpose(2, 3)

        q, k, v = heads(self.q(win)), heads(self.k(win)), heads(self.v(win))
        # 5. scaled scores + region mask, softmax over keys
        scores = (q * self.scale) @ k.transpose(-2, -1)  # (B, nW, heads, N, N)
        if sh or sw:
            mask = shifted_window_mask(hp, wp, (wh, ww), (sh, sw), dtype=scores.dtype, device=scores.device)
            scores = scores + mask[:, None]  # broadcast over batch and heads
        attn = scores.softmax(dim=-1)
        # 6. weighted sum, concatenate heads, merge
        out = (attn @ v).transpose(2, 3).reshape(b, nw, n, c)
        out = self.proj(out)
        # 7. reverse partition, reverse shift, crop
        out = _reverse(out, hp, wp, wh, ww)
        if sh or sw:
            out = torch.roll(out, shifts=(sh, sw), dims=(1, 2))
        if pad_h or pad_w:
            out = out[:, :h, :w, :].contiguous()
        return out


def cal_window_transformer_block(
    x: torch.Tensor, window_size: tuple[int, int], num_heads: int
) -> torch.Tensor:
    """Shifted-window attention of ``x`` (B, H, W, C) with ones-initialised Linears; same shape and dtype.

    Thin wrapper: validates the arguments (ValueError with a clear message), builds a
    ``ShiftedWindowAttention(C, window_size, num_heads, shift=True)`` in x's dtype/device and applies it.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (B, H, W, C), got shape {tuple(x.shape)}")
    ws = _check_window(window_size)
    _check_heads(x.shape[-1], num_heads)
    _check_input(x, ws)
    module = ShiftedWindowAttention(x.shape[-1], ws, num_heads, shift=True).to(device=x.device, dtype=x.dtype)
    return module(x)
