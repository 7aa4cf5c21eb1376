"""Tests for the hand-written GRU in models/gru.py against torch.nn.GRUCell / torch.nn.GRU."""

from __future__ import annotations

import random
import re

import pytest
import torch
from torch import nn

from models.gru import GRUCellFunction, HandGRU, gru_backward, gru_backward_full, gru_forward

F64 = torch.float64


def _random_shapes(n: int, seed: int) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    shapes = [(1, 1, 1), (8, 16, 16), (3, 5, 7), (4, 9, 2)]  # edges and input != hidden on both sides
    while len(shapes) < n:
        shapes.append((rng.randint(1, 8), rng.randint(1, 16), rng.randint(1, 16)))
    return shapes


SHAPES = _random_shapes(30, seed=1234)


def _cell_and_inputs(B: int, I: int, H: int, seed: int) -> tuple[nn.GRUCell, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    cell = nn.GRUCell(I, H).to(F64)
    x = torch.randn(B, I, dtype=F64)
    h = torch.randn(B, H, dtype=F64)
    return cell, x, h


def _params(cell: nn.GRUCell) -> tuple[torch.Tensor, ...]:
    return tuple(p.detach() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))


@pytest.mark.parametrize(("B", "I", "H"), SHAPES)
def test_forward_matches_grucell(B: int, I: int, H: int) -> None:
    cell, x, h = _cell_and_inputs(B, I, H, seed=B * 1000 + I * 100 + H)
    with torch.no_grad():
        expected = cell(x, h)
    out = gru_forward(x, h, *_params(cell))
    assert out.shape == (B, H)
    assert out.dtype == F64
    assert (out - expected).abs().max().item() <= 1e-12


@pytest.mark.parametrize(("B", "I", "H"), SHAPES)
def test_backward_matches_autograd(B: int, I: int, H: int) -> None:
    cell, x, h = _cell_and_inputs(B, I, H, seed=B * 1000 + I * 100 + H + 7)
    x.requires_grad_(True)
    h.requires_grad_(True)
    grad_out = torch.randn(B, H, dtype=F64)
    cell(x, h).backward(grad_out)
    expected = (
        x.grad,
        h.grad,
        *(p.grad for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)),
    )

    args = (grad_out, x.detach(), h.detach(), *_params(cell))
    full = gru_backward_full(*args)
    short = gru_backward(*args)
    assert len(full) == 6 and len(short) == 5
    names = ("input", "hidden", "weight_ih", "weight_hh", "bias_ih", "bias_hh")
    for name, got, exp in zip(names, full, expected, strict=True):
        assert got.shape == exp.shape, name
        assert (got - exp).abs().max().item() <= 1e-10, name
    for got, exp in zip(short, full[1:], strict=True):
        assert torch.equal(got, exp)


@pytest.mark.parametrize(("B", "I", "H"), [(1, 1, 1), (3, 4, 5), (2, 6, 3)])
def test_gradcheck_cell_function(B: int, I: int, H: int) -> None:
    cell, x, h = _cell_and_inputs(B, I, H, seed=B + I + H)
    inputs = tuple(t.clone().requires_grad_(True) for t in (x, h, *_params(cell)))
    assert torch.autograd.gradcheck(GRUCellFunction.apply, inputs, eps=1e-6, atol=1e-8)


def test_cell_function_respects_needs_input_grad() -> None:
    cell, x, h = _cell_and_inputs(2, 3, 4, seed=0)
    w_ih, w_hh, b_ih, b_hh = (p.clone().requires_grad_(True) for p in _params(cell))
    out = GRUCellFunction.apply(x, h, w_ih, w_hh, b_ih, b_hh)
    out.sum().backward()
    assert x.grad is None and h.grad is None
    assert all(p.grad is not None for p in (w_ih, w_hh, b_ih, b_hh))


def _pair(
    num_layers: int, bidirectional: bool, batch_first: bool = True, dropout: float = 0.0, seed: int = 0
) -> tuple[nn.GRU, HandGRU]:
    torch.manual_seed(seed)
    kwargs = dict(
        num_layers=num_layers, batch_first=batch_first, dropout=dropout, bidirectional=bidirectional
    )
    ref = nn.GRU(5, 6, **kwargs).to(F64)
    hand = HandGRU(5, 6, **kwargs).to(F64)
    hand.load_state_dict(ref.state_dict())
    return ref, hand


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_first"])
def test_sequence_matches_nn_gru(bidirectional: bool, batch_first: bool) -> None:
    ref, hand = _pair(num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    B, T, D = 3, 7, 2 if bidirectional else 1
    x = torch.randn((B, T, 5) if batch_first else (T, B, 5), dtype=F64)
    h0 = torch.randn(2 * D, B, 6, dtype=F64)
    x_ref, x_hand = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    h_ref, h_hand = h0.clone().requires_grad_(True), h0.clone().requires_grad_(True)

    out_ref, hn_ref = ref(x_ref, h_ref)
    out_hand, hn_hand = hand(x_hand, h_hand)
    assert out_hand.shape == out_ref.shape == ((B, T, D * 6) if batch_first else (T, B, D * 6))
    assert hn_hand.shape == hn_ref.shape == (2 * D, B, 6)
    assert (out_hand - out_ref).abs().max().item() <= 1e-10
    assert (hn_hand - hn_ref).abs().max().item() <= 1e-10

    g_out = torch.randn_like(out_ref)
    g_hn = torch.randn_like(hn_ref)
    torch.autograd.backward((out_ref, hn_ref), (g_out, g_hn))
    torch.autograd.backward((out_hand, hn_hand), (g_out, g_hn))
    ref_params = dict(ref.named_parameters())
    hand_params = dict(hand.named_parameters())
    assert ref_params.keys() == hand_params.keys()
    for name, p in ref_params.items():
        assert (hand_params[name].grad - p.grad).abs().max().item() <= 1e-10, name
    assert (x_hand.grad - x_ref.grad).abs().max().item() <= 1e-10
    assert (h_hand.grad - h_ref.grad).abs().max().item() <= 1e-10


def test_default_h0_and_unbatched_input() -> None:
    ref, hand = _pair(num_layers=1, bidirectional=True)
    x = torch.randn(4, 5, dtype=F64)  # unbatched (T, I)
    out_ref, hn_ref = ref(x)
    out_hand, hn_hand = hand(x)
    assert out_hand.shape == out_ref.shape == (4, 12)
    assert hn_hand.shape == hn_ref.shape == (2, 6)
    assert torch.allclose(out_hand, out_ref, atol=1e-12, rtol=0)
    assert torch.allclose(hn_hand, hn_ref, atol=1e-12, rtol=0)


def test_state_dict_names_and_init_match_nn_gru() -> None:
    ref = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    hand = HandGRU(3, 4, num_layers=2, bidirectional=True)
    assert list(hand.state_dict().keys()) == list(ref.state_dict().keys())
    for name, p in ref.state_dict().items():
        assert hand.state_dict()[name].shape == p.shape
        assert hand.state_dict()[name].abs().max().item() <= 0.5  # 1/sqrt(4)
    assert hand.load_state_dict(ref.state_dict()).missing_keys == []


def test_dropout_between_layers() -> None:
    ref, hand = _pair(num_layers=3, bidirectional=False, dropout=0.5)
    x = torch.randn(2, 6, 5, dtype=F64)
    hand.eval()
    ref.eval()
    out_eval, _ = hand(x)
    assert torch.allclose(out_eval, ref(x)[0], atol=1e-12, rtol=0)
    hand.train()
    ref.train()
    torch.manual_seed(42)
    out_train, _ = hand(x)
    assert not torch.allclose(out_train, out_eval)
    # On CPU nn.GRU draws its inter-layer dropout masks the same way, so the results coincide too.
    torch.manual_seed(42)
    out_ref, _ = ref(x)
    assert torch.allclose(out_train, out_ref, atol=1e-12, rtol=0)


def test_float32_module_path() -> None:
    torch.manual_seed(3)
    ref = nn.GRU(4, 5, num_layers=2)
    hand = HandGRU(4, 5, num_layers=2, batch_first=False)
    hand.load_state_dict(ref.state_dict())
    x = torch.randn(6, 2, 4)
    out_hand, hn_hand = hand(x)
    assert out_hand.dtype == torch.float32
    assert torch.allclose(out_hand, ref(x)[0], atol=1e-5)
    assert torch.allclose(hn_hand, ref(x)[1], atol=1e-5)
    with pytest.raises(ValueError, match="input"):
        hand(x.double())  # parameters are float32


# --------------------------------------------------------------------------- validation


def _valid_args(B: int = 2, I: int = 5, H: int = 8) -> dict[str, torch.Tensor]:
    return {
        "input": torch.randn(B, I, dtype=F64),
        "hidden": torch.randn(B, H, dtype=F64),
        "weight_ih": torch.randn(3 * H, I, dtype=F64),
        "weight_hh": torch.randn(3 * H, H, dtype=F64),
        "bias_ih": torch.randn(3 * H, dtype=F64),
        "bias_hh": torch.randn(3 * H, dtype=F64),
    }


BAD_CASES = {
    "int_dtype": ("input", lambda a: a["input"].to(torch.int64)),
    "mixed_dtypes": ("weight_hh", lambda a: a["weight_hh"].float()),
    "mismatched_batch": ("hidden", lambda a: torch.randn(3, 8, dtype=F64)),
    "weight_ih_rows": ("weight_ih", lambda a: torch.randn(23, 5, dtype=F64)),
    "weight_ih_cols": ("weight_ih", lambda a: torch.randn(24, 4, dtype=F64)),
    "weight_hh_shape": ("weight_hh", lambda a: torch.randn(24, 7, dtype=F64)),
    "bias_ih_shape": ("bias_ih", lambda a: torch.randn(21, dtype=F64)),
    "bias_hh_2d": ("bias_hh", lambda a: torch.randn(1, 24, dtype=F64)),
    "input_3d": ("input", lambda a: torch.randn(2, 1, 5, dtype=F64)),
}


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
@pytest.mark.parametrize("fn", ["forward", "backward", "backward_full"])
def test_invalid_arguments_raise(case: str, fn: str) -> None:
    name, make_bad = BAD_CASES[case]
    args = _valid_args()
    args[name] = make_bad(args)
    with pytest.raises(ValueError) as excinfo:
        if fn == "forward":
            gru_forward(**args)
        else:
            func = gru_backward if fn == "backward" else gru_backward_full
            func(torch.randn(2, 8, dtype=F64), **args)
    assert re.match(rf"{name}\b", str(excinfo.value)), str(excinfo.value)


def test_error_message_gives_expected_shape() -> None:
    args = _valid_args()
    args["weight_ih"] = torch.randn(23, 5, dtype=F64)
    expected = "weight_ih must have shape (3*H, I) = (24, 5), got (23, 5)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        gru_forward(**args)


def test_grad_output_validated() -> None:
    with pytest.raises(ValueError, match="grad_output"):
        gru_backward(torch.randn(2, 7, dtype=F64), **_valid_args())
    with pytest.raises(ValueError, match="grad_output"):
        gru_backward(torch.randn(2, 8, dtype=torch.float32), **_valid_args())


def test_float32_accepted_by_functions() -> None:
    args = {k: v.float() for k, v in _valid_args().items()}
    out = gru_forward(**args)
    assert out.dtype == torch.float32 and out.shape == (2, 8)
    grads = gru_backward(torch.ones(2, 8), **args)
    assert all(g.dtype == torch.float32 for g in grads)


def test_module_validation() -> None:
    hand = HandGRU(5, 6, num_layers=2)
    with pytest.raises(ValueError, match="h0"):
        hand(torch.randn(2, 3, 5), torch.randn(1, 2, 6))
    with pytest.raises(ValueError, match="x"):
        hand(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="dropout"):
        HandGRU(5, 6, dropout=1.5)
