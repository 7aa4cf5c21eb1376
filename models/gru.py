"""A GRU written by hand: forward, hand-derived backward, autograd wrapper and a multi-layer module.

This exists for teaching and for verification: every gradient is derived on paper and checked
against autograd / ``torch.nn.GRU`` in the tests. It runs a Python loop over time steps and layers,
so it is much slower than ``torch.nn.GRU``; use that for real training.

Conventions follow ``torch.nn.GRU``: batch-first 2-D tensors ``input (B, I)``, ``hidden (B, H)``,
``weight_ih (3H, I)``, ``weight_hh (3H, H)``, biases ``(3H,)``, gate rows ordered reset, update, new::

    r  = sigmoid(W_r x + b_ir + U_r h + b_hr)
    z  = sigmoid(W_z x + b_iz + U_z h + b_hz)
    n  = tanh(W_n x + b_in + r * (U_n h + b_hn))
    h' = z * h + (1 - z) * n
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "GRUCellFunction",
    "HandGRU",
    "gru_backward",
    "gru_backward_full",
    "gru_forward",
]

_FLOAT_DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------- validation


def _validate(
    input: Tensor,
    hidden: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
    grad_output: Tensor | None = None,
) -> None:
    """Check dtypes, ranks and shapes; raise ``ValueError`` naming the offending argument."""
    named = {
        "input": input,
        "hidden": hidden,
        "weight_ih": weight_ih,
        "weight_hh": weight_hh,
        "bias_ih": bias_ih,
        "bias_hh": bias_hh,
    }
    if grad_output is not None:
        named["grad_output"] = grad_output

    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"{name} must have dtype torch.float32 or torch.float64, got {t.dtype}")
    dtype = input.dtype
    for name, t in named.items():
        if t.dtype != dtype:
            raise ValueError(f"{name} has dtype {t.dtype}, but input has dtype {dtype}; all must match")
    device = input.device
    for name, t in named.items():
        if t.device != device:
            raise ValueError(f"{name} is on device {t.device}, but input is on {device}; all must match")

    expected_ndim = {
        "input": (2, "(B, I)"),
        "hidden": (2, "(B, H)"),
        "weight_ih": (2, "(3*H, I)"),
        "weight_hh": (2, "(3*H, H)"),
        "bias_ih": (1, "(3*H,)"),
        "bias_hh": (1, "(3*H,)"),
        "grad_output": (2, "(B, H)"),
    }
    for name, t in named.items():
        ndim, layout = expected_ndim[name]
        if t.dim() != ndim:
            raise ValueError(f"{name} must be {ndim}-D with shape {layout}, got shape {tuple(t.shape)}")

    B, I = input.shape
    H = hidden.shape[1]
    if hidden.shape[0] != B:
        raise ValueError(
            f"hidden must have shape (B, H) = ({B}, {H}) with the batch size of input, "
            f"got {tuple(hidden.shape)}"
        )
    for name, t, rows, other in (
        ("weight_ih", weight_ih, 3 * H, "I"),
        ("weight_hh", weight_hh, 3 * H, "H"),
    ):
        cols = I if other == "I" else H
        if tuple(t.shape) != (rows, cols):
            hint = "" if t.shape[0] % 3 == 0 else "; its rows are not divisible by 3 (gates r, z, n)"
            raise ValueError(
                f"{name} must have shape (3*H, {other}) = ({rows}, {cols}), got {tuple(t.shape)}{hint}"
            )
    for name, t in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if tuple(t.shape) != (3 * H,):
            raise ValueError(f"{name} must have shape (3*H,) = ({3 * H},), got {tuple(t.shape)}")
    if grad_output is not None and tuple(grad_output.shape) != (B, H):
        raise ValueError(f"grad_output must have shape (B, H) = ({B}, {H}), got {tuple(grad_output.shape)}")


# --------------------------------------------------------------------------- math (unvalidated)


def _gates(
    input: Tensor, hidden: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Return ``r, z, n`` and the hidden part of the new-gate pre-activation ``U_n h + b_hn``."""
    gi = torch.addmm(bias_ih, input, weight_ih.t())
    gh = torch.addmm(bias_hh, hidden, weight_hh.t())
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return r, z, n, h_n


def _backward(
    grad_output: Tensor,
    input: Tensor,
    hidden: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Hand-derived gradients of ``h'`` (gates recomputed, no autograd).

    With ``g = dL/dh'``::

        dn = g (1 - z)            dz = g (h - n)            dh (direct) = g z
        da_n = dn (1 - n^2)       (pre-activation of n)
        da_r = da_n (U_n h + b_hn) r (1 - r)
        da_z = dz z (1 - z)
        d(gi) = [da_r, da_z, da_n]        d(gh) = [da_r, da_z, da_n r]
        dx = d(gi) W_ih    dh = d(gh) W_hh + g z
        dW_ih = d(gi)^T x  dW_hh = d(gh)^T h   db_ih = sum_B d(gi)   db_hh = sum_B d(gh)
    """
    r, z, n, h_n = _gates(input, hidden, weight_ih, weight_hh, bias_ih, bias_hh)
    da_n = grad_output * (1 - z) * (1 - n * n)
    da_r = da_n * h_n * r * (1 - r)
    da_z = grad_output * (hidden - n) * z * (1 - z)
    d_gi = torch.cat((da_r, da_z, da_n), dim=1)
    d_gh = torch.cat((da_r, da_z, da_n * r), dim=1)

    grad_input = d_gi @ weight_ih
    grad_hidden = torch.addmm(grad_output * z, d_gh, weight_hh)
    grad_weight_ih = d_gi.t() @ input
    grad_weight_hh = d_gh.t() @ hidden
    grad_bias_ih = d_gi.sum(dim=0)
    grad_bias_hh = d_gh.sum(dim=0)
    return grad_input, grad_hidden, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh


# --------------------------------------------------------------------------- public functions


def gru_forward(
    input: Tensor, hidden: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor, bias_hh: Tensor
) -> Tensor:
    """One GRU step: return the new hidden state ``h'`` of shape ``(B, H)``."""
    _validate(input, hidden, weight_ih, weight_hh, bias_ih, bias_hh)
    _, z, n, _ = _gates(input, hidden, weight_ih, weight_hh, bias_ih, bias_hh)
    return n + z * (hidden - n)  # == z * h + (1 - z) * n


def gru_backward_full(
    grad_output: Tensor,
    input: Tensor,
    hidden: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients of one GRU step given ``grad_output = dL/dh'``.

    Returns ``(grad_input, grad_hidden, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh)``.
    """
    _validate(input, hidden, weight_ih, weight_hh, bias_ih, bias_hh, grad_output=grad_output)
    return _backward(grad_output, input, hidden, weight_ih, weight_hh, bias_ih, bias_hh)


def gru_backward(
    grad_output: Tensor,
    input: Tensor,
    hidden: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Like :func:`gru_backward_full` without ``grad_input``.

    Returns ``(grad_hidden, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh)``.
    """
    return gru_backward_full(grad_output, input, hidden, weight_ih, weight_hh, bias_ih, bias_hh)[1:]


class GRUCellFunction(torch.autograd.Function):
    """Autograd wrapper: forward via :func:`gru_forward`, backward via :func:`gru_backward_full`.

    Call as ``GRUCellFunction.apply(input, hidden, weight_ih, weight_hh, bias_ih, bias_hh)``.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        input: Tensor,
        hidden: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
    ) -> Tensor:
        ctx.save_for_backward(input, hidden, weight_ih, weight_hh, bias_ih, bias_hh)
        return gru_forward(input, hidden, weight_ih, weight_hh, bias_ih, bias_hh)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        grads = gru_backward_full(grad_output.contiguous(), *ctx.saved_tensors)
        return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad, strict=True))


# --------------------------------------------------------------------------- module


class HandGRU(nn.Module):
    """Multi-layer (optionally bidirectional) GRU built on :class:`GRUCellFunction`.

    Drop-in for ``torch.nn.GRU`` (with ``bias=True``): same parameter names, initialisation,
    input/output shapes and inter-layer dropout, so ``load_state_dict(nn_gru.state_dict())`` works.
    Slow (Python loop over time); meant for teaching and verification.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(
                "input_size, hidden_size and num_layers must be positive, got "
                f"{input_size}, {hidden_size}, {num_layers}"
            )
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout acts only between layers, so it has no effect with num_layers=1",
                UserWarning,
                stacklevel=2,
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1

        H = hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else H * self.num_directions
            for suffix in self._suffixes():
                name = f"l{layer}{suffix}"
                setattr(self, f"weight_ih_{name}", nn.Parameter(torch.empty(3 * H, layer_in)))
                setattr(self, f"weight_hh_{name}", nn.Parameter(torch.empty(3 * H, H)))
                setattr(self, f"bias_ih_{name}", nn.Parameter(torch.empty(3 * H)))
                setattr(self, f"bias_hh_{name}", nn.Parameter(torch.empty(3 * H)))
        self.reset_parameters()

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) for every parameter, as ``nn.GRU`` does."""
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    def _cell_params(self, layer: int, suffix: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        name = f"l{layer}{suffix}"
        return (
            getattr(self, f"weight_ih_{name}"),
            getattr(self, f"weight_hh_{name}"),
            getattr(self, f"bias_ih_{name}"),
            getattr(self, f"bias_hh_{name}"),
        )

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the sequence.

        ``x``: ``(B, T, I)`` if ``batch_first`` else ``(T, B, I)``; or unbatched ``(T, I)``.
        ``h0``: ``(num_layers * D, B, H)`` (``(num_layers * D, H)`` if unbatched); zeros if None.
        Returns ``output`` ``(B, T, D*H)`` (or ``(T, B, D*H)`` / ``(T, D*H)``) and ``h_n``
        ``(num_layers * D, B, H)`` (or ``(num_layers * D, H)``).
        """
        D, H, L = self.num_directions, self.hidden_size, self.num_layers
        if x.dim() not in (2, 3):
            raise ValueError(f"x must be 2-D (unbatched) or 3-D, got shape {tuple(x.shape)}")
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)  # (T, 1, I)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        T, B, I = x.shape
        if I != self.input_size:
            raise ValueError(f"x must have input size {self.input_size} in its last dim, got {I}")
        if T == 0:
            raise ValueError("x must have at least one time step")

        if h0 is None:
            h0 = x.new_zeros(L * D, B, H)
        else:
            if unbatched:
                if h0.dim() != 2:
                    raise ValueError(f"h0 must be 2-D for unbatched x, got shape {tuple(h0.shape)}")
                h0 = h0.unsqueeze(1)
            if tuple(h0.shape) != (L * D, B, H):
                raise ValueError(
                    f"h0 must have shape (num_layers*D, B, H) = ({L * D}, {B}, {H}), got {tuple(h0.shape)}"
                )

        layer_input = x
        h_n: list[Tensor] = []
        for layer in range(L):
            dir_outputs: list[Tensor] = []
            for d, suffix in enumerate(self._suffixes()):
                params = self._cell_params(layer, suffix)
                h = h0[layer * D + d]
                steps: list[Tensor] = [h] * T
                order = range(T - 1, -1, -1) if d == 1 else range(T)
                for t in order:
                    h = GRUCellFunction.apply(layer_input[t], h, *params)
                    steps[t] = h
                dir_outputs.append(torch.stack(steps, dim=0))  # (T, B, H)
                h_n.append(h)
            layer_output = dir_outputs[0] if D == 1 else torch.cat(dir_outputs, dim=2)
            if self.dropout > 0 and self.training and layer < L - 1:
                layer_output = F.dropout(layer_output, p=self.dropout, training=True)
            layer_input = layer_output

        output = layer_input
        hidden = torch.stack(h_n, dim=0)
        if unbatched:
            return output.squeeze(1), hidden.squeeze(1)
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, hidden

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        s += f", batch_first={self.batch_first}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s
