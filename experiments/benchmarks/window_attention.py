"""Time our vectorised shifted-window attention against transformers' SwinLayer attention path.

Run: ``python -m experiments.benchmarks.window_attention [--threads N] [--repeats R] [--batch B]``.

Both sides compute the same thing (checked before timing): zero-pad, cyclic shift, window partition,
ones-initialised q/k/v and output projections, region mask, reverse shift, crop. transformers is timed two
ways: its attention path exactly as SwinLayer.forward runs it (maybe_pad, cyclic_shift, window_partition,
get_attn_mask, SwinLayer.attention, window_reverse), and the whole reduced SwinLayer.forward (which also pays
for the residual, LayerNorm and MLP whose last layer is zeroed).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from experiments.core.cli import UsageError, run_cli
from models.window_attention import ShiftedWindowAttention


def reduced_swin_layer(dim: int, heads: int, window: int, resolution: tuple[int, int]) -> nn.Module:
    """SwinLayer with ones q/k/v/o projections, zero position bias, Identity pre-norm, zeroed MLP output."""
    from transformers import SwinConfig
    from transformers.models.swin.modeling_swin import SwinLayer

    config = SwinConfig(
        embed_dim=dim,
        depths=[1],
        num_heads=[heads],
        window_size=window,
        drop_path_rate=0.0,
        attention_probs_dropout_prob=0.0,
        hidden_dropout_prob=0.0,
        qkv_bias=True,
    )
    config._attn_implementation = "eager"  # what a bare layer falls back to anyway, minus the warning
    layer = SwinLayer(config, dim=dim, input_resolution=resolution, num_heads=heads, shift_size=window // 2)
    attn = layer.attention
    if hasattr(attn, "q_proj"):  # transformers >= 5
        projs = [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj]
        table = attn.relative_position_bias.relative_position_bias_table
        last = layer.mlp.fc2
    else:  # transformers 4.x
        projs = [attn.self.query, attn.self.key, attn.self.value, attn.output.dense]
        table = attn.self.relative_position_bias_table
        last = layer.output.dense
    with torch.no_grad():
        for lin in projs:
            nn.init.ones_(lin.weight)
            nn.init.ones_(lin.bias)
        table.zero_()
        last.weight.zero_()
        last.bias.zero_()
    layer.layernorm_before = nn.Identity()
    layer.projs = projs  # the tests copy random weights in through these
    return layer.eval()


def hf_attention_path(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The attention part of SwinLayer.forward, step for step, using the layer's own helpers."""
    from transformers.models.swin.modeling_swin import window_partition, window_reverse

    b, h, w, c = x.shape
    ws = layer.window_size
    padded, pad_values = layer.maybe_pad(x, h, w)
    _, hp, wp, _ = padded.shape
    windows = window_partition(layer.cyclic_shift(padded), ws).view(-1, ws * ws, c)
    mask = layer.get_attn_mask(hp, wp, dtype=x.dtype, device=x.device)
    out = layer.attention(windows, mask)[0]
    out = layer.cyclic_shift(window_reverse(out.view(-1, ws, ws, c), ws, hp, wp), reverse=True)
    if pad_values[3] > 0 or pad_values[5] > 0:
        out = out[:, :h, :w, :].contiguous()
    return out


def time_call(fn: Callable[[], torch.Tensor], repeats: int) -> float:
    """Median seconds per call after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    for flag in ("threads", "repeats", "batch"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    torch.set_num_threads(args.threads)

    b, h, w, c, window, heads = args.batch, 56, 56, 96, 7, 3
    x = torch.randn(b, h, w, c, generator=torch.Generator().manual_seed(0)) * 0.1
    ours = ShiftedWindowAttention(c, (window, window), heads).eval()
    layer = reduced_swin_layer(c, heads, window, (h, w))
    flat = x.reshape(b, h * w, c)

    with torch.no_grad():
        a, ref = ours(x), hf_attention_path(layer, x)
        full = layer(flat, (h, w))[0].reshape(b, h, w, c) - x
        err = ((a - ref).abs().max() / ref.abs().max()).item()
        err_full = ((a - full).abs().max() / full.abs().max()).item()
        t_ours = time_call(lambda: ours(x), args.repeats)
        t_hf = time_call(lambda: hf_attention_path(layer, x), args.repeats)
        t_full = time_call(lambda: layer(flat, (h, w)), args.repeats)

    print(
        f"input ({b}, {h}, {w}, {c}) float32, window ({window}, {window}), heads {heads}, "
        f"threads {torch.get_num_threads()}, median of {args.repeats} after 1 warm-up"
    )
    print(f"max rel diff vs transformers: attention path {err:.1e}, full reduced layer {err_full:.1e}")
    rows = [
        ("ours (vectorised)", t_ours),
        ("transformers attention path", t_hf),
        ("transformers reduced SwinLayer", t_full),
    ]
    for name, t in rows:
        print(f"{name:<31}: {t * 1e3:9.1f} ms/call   ours/this = {t_ours / t:.2f}")


if __name__ == "__main__":
    run_cli(main)
