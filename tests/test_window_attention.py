"""Tests for models.window_attention: hand-written Swin shifted-window attention.

References: transformers' SwinLayer reduced to its attention path (square windows), and a plain float64
loop implementation written here (any window shape). Inputs are small-magnitude (randn * 0.1) because the
ones-initialised Linears sum all channels, and large sums would saturate the softmax and hide mistakes.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from experiments.benchmarks.window_attention import reduced_swin_layer
from models.window_attention import (
    HeaderConcatMLP,
    IdentityMLP,
    ShiftedWindowAttention,
    cal_window_transformer_block,
    shifted_window_mask,
)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max|a - b| / max|b|: error relative to the output's scale (ones-init makes outputs large)."""
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max()).item()


def small_input(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 0.1).to(dtype)


def randomize(module: nn.Module, seed: int) -> None:
    """Replace the ones-init with random weights so channels and heads differ (more discriminative)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype) * 0.3)


def assert_not_constant(out: torch.Tensor) -> None:
    """Guard against a test passing because the output is the same for every token."""
    flat = out.reshape(-1, out.shape[-1])
    spread = (flat - flat.mean(dim=0)).abs().max()
    assert spread > 1e-3 * flat.abs().max(), "output is (nearly) constant across tokens"


# --------------------------------------------------------------------------------------------------------
# transformers reference
# --------------------------------------------------------------------------------------------------------


def swin_attention(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, h, w, c = x.shape
    with torch.no_grad():
        out = layer(x.reshape(b, h * w, c), (h, w))[0]
    return (out - x.reshape(b, h * w, c)).reshape(b, h, w, c)


# (B, H, W, window, heads). H, W > window everywhere: SwinLayer.set_shift_and_window_size turns the shift off
# (and shrinks the window) when min(H, W) <= window, which would no longer be a shifted-window reference.
HF_CASES = [
    (1, 8, 8, 4, 1),  # divisible
    (2, 14, 14, 7, 3),  # divisible, odd window (shift 3)
    (3, 9, 11, 4, 2),  # not divisible in H nor W (padding)
    (2, 10, 13, 3, 4),  # not divisible, window 3 (shift 1)
    (4, 6, 7, 5, 3),  # not divisible, padded map is 10 x 10
    (2, 12, 9, 4, 4),  # divisible in H only
]


@pytest.mark.parametrize(("b", "h", "w", "window", "heads"), HF_CASES)
def test_matches_transformers_swin_layer(b: int, h: int, w: int, window: int, heads: int) -> None:
    c = 12
    x = small_input((b, h, w, c), seed=b * 1000 + h * 10 + w, dtype=torch.float32)
    layer = reduced_swin_layer(c, heads, window, (h, w))
    expected = swin_attention(layer, x)
    assert layer.shift_size == window // 2, "transformers disabled the shift: case is not a shifted window"

    ours = cal_window_transformer_block(x.double(), (window, window), heads)
    assert ours.shape == x.shape and ours.dtype == torch.float64
    assert rel_err(ours, expected) <= 1e-6
    assert_not_constant(ours)
    # float32 in, float32 out, same numbers
    ours32 = cal_window_transformer_block(x, (window, window), heads)
    assert ours32.dtype == torch.float32
    assert rel_err(ours32, expected) <= 1e-6


@pytest.mark.parametrize(("b", "h", "w", "window", "heads"), [HF_CASES[2], HF_CASES[3]])
def test_matches_transformers_with_random_weights(b: int, h: int, w: int, window: int, heads: int) -> None:
    """Random weights make channels and heads differ, so head split/merge order is really checked."""
    c = 12
    x = small_input((b, h, w, c), seed=7, dtype=torch.float32)
    ours = ShiftedWindowAttention(c, (window, window), heads)
    randomize(ours, seed=11)
    layer = reduced_swin_layer(c, heads, window, (h, w))
    with torch.no_grad():
        for src, dst in zip([ours.q, ours.k, ours.v, ours.proj], layer.projs, strict=True):
            dst.weight.copy_(src.mlp.weight)
            dst.bias.copy_(src.mlp.bias)
    expected = swin_attention(layer, x)
    with torch.no_grad():
        got = ours.double()(x.double())
    assert rel_err(got, expected) <= 1e-6
    assert_not_constant(got)


# --------------------------------------------------------------------------------------------------------
# plain loop reference (any window shape)
# --------------------------------------------------------------------------------------------------------


def _region(i: int, size: int, window: int, shift: int) -> int:
    """Region of padded-axis position i: slices (0,-window), (-window,-shift), (-shift,None) as in Swin."""
    if shift == 0:
        return 0
    if i < size - window:
        return 0
    if i < size - shift:
        return 1
    return 2


def loop_reference(
    x: torch.Tensor, module: ShiftedWindowAttention, window: tuple[int, int], heads: int, shift: bool
) -> torch.Tensor:
    """Window-by-window, head-by-head float64 computation of the documented semantics."""
    x = x.double()
    wq, bq = module.q.mlp.weight.double(), module.q.mlp.bias.double()
    wk, bk = module.k.mlp.weight.double(), module.k.mlp.bias.double()
    wv, bv = module.v.mlp.weight.double(), module.v.mlp.bias.double()
    wo, bo = module.proj.mlp.weight.double(), module.proj.mlp.bias.double()
    b, h, w, c = x.shape
    wh, ww = window
    d = c // heads
    hp, wp = math.ceil(h / wh) * wh, math.ceil(w / ww) * ww
    padded = torch.zeros(b, hp, wp, c, dtype=torch.float64)
    padded[:, :h, :w] = x
    sh, sw = (wh // 2, ww // 2) if shift else (0, 0)
    shifted = torch.roll(padded, shifts=(-sh, -sw), dims=(1, 2))
    out = torch.zeros_like(shifted)
    for bi in range(b):
        for r0 in range(0, hp, wh):
            for c0 in range(0, wp, ww):
                coords = [(r, col) for r in range(r0, r0 + wh) for col in range(c0, c0 + ww)]
                tokens = torch.stack([shifted[bi, r, col] for r, col in coords])
                q, k, v = tokens @ wq.T + bq, tokens @ wk.T + bk, tokens @ wv.T + bv
                mask = torch.zeros(len(coords), len(coords), dtype=torch.float64)
                for i, (ri, ci) in enumerate(coords):
                    for j, (rj, cj) in enumerate(coords):
                        same = _region(ri, hp, wh, sh) == _region(rj, hp, wh, sh) and _region(
                            ci, wp, ww, sw
                        ) == _region(cj, wp, ww, sw)
                        if not same:
                            mask[i, j] = -100.0
                head_outs = []
                for hi in range(heads):
                    sl = slice(hi * d, (hi + 1) * d)
                    scores = q[:, sl] @ k[:, sl].T / math.sqrt(d) + mask
                    head_outs.append(torch.softmax(scores, dim=-1) @ v[:, sl])
                merged = torch.cat(head_outs, dim=-1) @ wo.T + bo
                for i, (r, col) in enumerate(coords):
                    out[bi, r, col] = merged[i]
    out = torch.roll(out, shifts=(sh, sw), dims=(1, 2))
    return out[:, :h, :w]


@pytest.mark.parametrize(
    ("b", "h", "w", "window", "heads", "shift"),
    [
        (2, 6, 9, (2, 3), 2, True),  # divisible, non-square
        (1, 7, 11, (3, 5), 3, True),  # not divisible in either axis
        (2, 9, 5, (4, 2), 1, True),  # tall window, H not divisible
        (1, 5, 8, (1, 3), 4, True),  # wh = 1: no shift along H, only W
        (2, 7, 11, (3, 5), 2, False),  # plain window attention
        (1, 4, 6, (4, 6), 2, True),  # window equal to the image: allowed, one window
    ],
)
@pytest.mark.parametrize("random_weights", [False, True])
def test_matches_loop_reference_non_square(
    b: int, h: int, w: int, window: tuple[int, int], heads: int, shift: bool, random_weights: bool
) -> None:
    c = 12
    x = small_input((b, h, w, c), seed=h * 31 + w)
    module = ShiftedWindowAttention(c, window, heads, shift=shift).double()
    if random_weights:
        randomize(module, seed=3)
    with torch.no_grad():
        got = module(x)
    expected = loop_reference(x, module, window, heads, shift)
    assert got.shape == x.shape
    assert rel_err(got, expected) <= 1e-10
    assert_not_constant(got)


def test_function_is_the_default_module() -> None:
    x = small_input((2, 7, 9, 8), seed=1)
    with torch.no_grad():
        expected = ShiftedWindowAttention(8, (3, 4), 2).double()(x)
    got = cal_window_transformer_block(x, (3, 4), 2)
    assert torch.equal(got, expected)


def test_layers_are_ones_initialised() -> None:
    for layer, shape in [(IdentityMLP(5), (5, 5)), (HeaderConcatMLP(6, 4), (4, 6))]:
        assert layer.mlp.weight.shape == shape
        assert torch.equal(layer.mlp.weight, torch.ones(shape))
        assert torch.equal(layer.mlp.bias, torch.ones(shape[0]))
        assert layer.linear is layer.mlp
        with torch.no_grad():
            layer.mlp.weight.zero_()
        layer.initialize_weights_ones()
        assert torch.equal(layer.mlp.weight, torch.ones(shape))
    module = ShiftedWindowAttention(6, (2, 2), 3)
    assert all(torch.equal(p, torch.ones_like(p)) for p in module.parameters())


def test_mask_regions() -> None:
    """Mask for an 8x8 map, window 4, shift 2: the top-left window is one region; the last is four."""
    mask = shifted_window_mask(8, 8, (4, 4), (2, 2), dtype=torch.float64)
    assert mask.shape == (4, 16, 16)
    assert torch.all(mask[0] == 0)
    assert set(mask.unique().tolist()) == {0.0, -100.0}
    # last window: 4 regions of 2x2 tokens, each token sees exactly 4 tokens unmasked
    assert torch.all((mask[3] == 0).sum(dim=-1) == 4)


# --------------------------------------------------------------------------------------------------------
# shift semantics, gradients, errors
# --------------------------------------------------------------------------------------------------------


def _changed_tokens(module: ShiftedWindowAttention, x: torch.Tensor, token: tuple[int, int]) -> set:
    x2 = x.clone()
    x2[0, token[0], token[1]] += 1.0
    with torch.no_grad():
        diff = (module(x2) - module(x)).abs().amax(dim=-1)[0]
    return {tuple(idx) for idx in (diff > 1e-12).nonzero().tolist()}


def _block(rows: range, cols: range) -> set:
    return {(r, c) for r in rows for c in cols}


def test_shift_semantics() -> None:
    x = small_input((1, 8, 8, 4), seed=5)
    plain = ShiftedWindowAttention(4, (4, 4), 2, shift=False).double()
    shifted = ShiftedWindowAttention(4, (4, 4), 2, shift=True).double()

    # no shift: perturbing a token of window [0:4]x[0:4] changes exactly that window
    assert _changed_tokens(plain, x, (3, 3)) == _block(range(4), range(4))
    # shift by 2: token (3,3) lives in the shifted window made of original tokens [2:6]x[2:6] (all in one
    # region, no mask), so the change crosses the original window boundary
    changed = _changed_tokens(shifted, x, (3, 3))
    assert changed == _block(range(2, 6), range(2, 6))
    assert changed - _block(range(4), range(4))
    # token (0,0) is rolled to the bottom-right corner; the mask keeps it from attending to tokens wrapped
    # around from the other borders, so only its own 2x2 region changes
    assert _changed_tokens(shifted, x, (0, 0)) == _block(range(2), range(2))


def test_gradients_flow() -> None:
    module = ShiftedWindowAttention(8, (3, 2), 2).double()
    x = small_input((2, 7, 5, 8), seed=9).requires_grad_(True)
    weights = small_input((2, 7, 5, 8), seed=10)
    (module(x) * weights).sum().backward()
    grads = {"x": x.grad} | {name: p.grad for name, p in module.named_parameters()}
    assert len(grads) == 1 + 8  # q, k, v, proj: weight and bias each
    for name, grad in grads.items():
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().max() > 0, name


@pytest.mark.parametrize(
    ("shape", "window", "heads", "message"),
    [
        ((7, 7, 4), (2, 2), 2, "4-D"),
        ((1, 1, 7, 7, 4), (2, 2), 2, "4-D"),
        ((1, 7, 7, 4), (2, 2), 0, "num_heads"),
        ((1, 7, 7, 4), (2, 2), -1, "num_heads"),
        ((1, 7, 7, 4), (8, 2), 2, "larger than the image"),
        ((1, 7, 7, 4), (2, 8), 2, "larger than the image"),
        ((1, 7, 7, 6), (2, 2), 4, "divisible"),
        ((1, 7, 7, 4), (0, 2), 2, "positive"),
        ((1, 7, 7, 4), (2, -1), 2, "positive"),
        ((1, 7, 7, 4), (2, 2, 2), 2, "pair"),
    ],
)
def test_errors(shape: tuple[int, ...], window: tuple[int, ...], heads: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cal_window_transformer_block(torch.zeros(shape), window, heads)


def test_module_errors() -> None:
    with pytest.raises(ValueError, match="num_heads"):
        ShiftedWindowAttention(4, (2, 2), 0)
    with pytest.raises(ValueError, match="divisible"):
        ShiftedWindowAttention(6, (2, 2), 4)
    module = ShiftedWindowAttention(4, (3, 3), 2)
    with pytest.raises(ValueError, match="dim=4"):
        module(torch.zeros(1, 5, 5, 8))
    with pytest.raises(ValueError, match="larger than the image"):
        module(torch.zeros(1, 2, 5, 4))
    with pytest.raises(ValueError, match="floating"):
        cal_window_transformer_block(torch.zeros(1, 5, 5, 4, dtype=torch.long), (2, 2), 2)
