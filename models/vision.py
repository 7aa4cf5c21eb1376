"""ViT and Swin image classifiers (Hugging Face classes, from scratch) built from one flat parameter dict.

`validate` runs before anything is built, because transformers accepts shapes it then mishandles. Measured
with tiny forward passes (transformers 5.24):

* ViT, hidden size not divisible by the heads (192 / 5): no error, q/k/v silently shrink to 5 × 38 = 190.
* patch not dividing the image (5 on 32 px): ViT silently drops the last 2 pixel rows/columns, Swin pads.
* Swin, stage width `embed_dim · 2^i` not divisible by its heads: bare RuntimeError in a `view`.
* Swin, odd feature map before a patch merging: silently zero-padded to even.
* Swin, window larger than a stage's map: the window is shrunk to the map but the relative-position
  table is not, so the forward pass fails with a bare RuntimeError (e.g. window 5 on an 8×8 grid with 2
  stages, or window 4 with 3 stages at 32 px / patch 4).
* Swin, window not dividing a stage's map (5 on 8×8): runs, but the map is zero-padded to 10×10 and the
  padding tokens take part in every window's attention unmasked (+56 % tokens, outputs depend on it).

So: the patch divides the image, every width divides by its heads, every stage's map is an integer, and
the window divides every stage's map (window == map is global attention and is fine). ViT has no stochastic
depth in transformers, so `drop_path_rate` must be 0 for it rather than be ignored.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
from transformers import SwinConfig, SwinForImageClassification, ViTConfig, ViTForImageClassification

from models.errors import InvalidModelConfig

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MODEL_TYPES = ("vit", "swin")

COMMON_DEFAULTS: dict[str, Any] = {
    "image_size": 32,
    "patch_size": 4,
    "mlp_ratio": 2.0,
    "drop_path_rate": 0.0,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}
VIT_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "hidden_size": 192,
    "num_hidden_layers": 6,
    "num_attention_heads": 3,
    "intermediate_size": None,  # None: hidden_size · mlp_ratio
}
SWIN_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "embed_dim": 64,
    "depths": [2, 2, 2],
    "num_heads": [2, 4, 8],
    "window_size": 4,
}


def model_params(params: dict[str, Any]) -> dict[str, Any]:
    """The model's own keys (defaults filled in); other keys of a flat search dict are left out."""
    model_type = params.get("model_type", "vit")
    if model_type not in MODEL_TYPES:
        raise InvalidModelConfig(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    defaults = VIT_DEFAULTS if model_type == "vit" else SWIN_DEFAULTS
    return {"model_type": model_type, **{k: params.get(k, v) for k, v in defaults.items()}}


def stage_maps(params: dict[str, Any]) -> list[int]:
    """Side of each Swin stage's feature map (the patch grid halved by every patch merging)."""
    grid = params["image_size"] // params["patch_size"]
    return [grid // 2**i for i in range(len(params["depths"]))]


def _positive_int(p: dict[str, Any], name: str) -> None:
    value = p[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidModelConfig(f"{name} must be a positive integer, got {value!r}")


def _int_list(p: dict[str, Any], name: str) -> list[int]:
    value = p[name]
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise InvalidModelConfig(f"{name} must be a non-empty list of positive integers, got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in value):
        raise InvalidModelConfig(f"{name} must be a non-empty list of positive integers, got {value!r}")
    return list(value)


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Reject (InvalidModelConfig, one line naming the field) what would fail or silently misbehave."""
    p = model_params(params)
    for name in ("image_size", "patch_size"):
        _positive_int(p, name)
    image, patch = p["image_size"], p["patch_size"]
    if image % patch:
        raise InvalidModelConfig(
            f"patch_size {patch} must divide image_size {image} (transformers would silently drop or pad "
            f"the last {image % patch} pixel rows/columns)"
        )
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate"):
        if not 0.0 <= float(p[name]) < 1.0:
            raise InvalidModelConfig(f"{name} must be in [0, 1), got {p[name]!r}")
    if not float(p["mlp_ratio"]) > 0:
        raise InvalidModelConfig(f"mlp_ratio must be > 0, got {p['mlp_ratio']!r}")
    if p["model_type"] == "vit":
        _validate_vit(p)
    else:
        _validate_swin(p)
    return p


def _validate_vit(p: dict[str, Any]) -> None:
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads"):
        _positive_int(p, name)
    hidden, heads = p["hidden_size"], p["num_attention_heads"]
    if hidden % heads:
        raise InvalidModelConfig(
            f"num_attention_heads {heads} must divide hidden_size {hidden} (transformers would silently "
            f"use {heads} × {hidden // heads} = {heads * (hidden // heads)}-dim attention projections)"
        )
    if p["intermediate_size"] is not None:
        _positive_int(p, "intermediate_size")
    elif round(hidden * float(p["mlp_ratio"])) < 1:
        raise InvalidModelConfig(f"mlp_ratio {p['mlp_ratio']} gives an empty MLP for hidden_size {hidden}")
    if float(p["drop_path_rate"]) != 0.0:
        raise InvalidModelConfig(
            "drop_path_rate must be 0 for ViT (transformers' ViT has no stochastic depth; "
            "use hidden_dropout_prob)"
        )


def _validate_swin(p: dict[str, Any]) -> None:
    _positive_int(p, "embed_dim")
    _positive_int(p, "window_size")
    depths, heads = _int_list(p, "depths"), _int_list(p, "num_heads")
    if len(depths) != len(heads):
        raise InvalidModelConfig(
            f"depths {depths} and num_heads {heads} must have the same length (one entry per stage)"
        )
    for i, h in enumerate(heads):
        width = p["embed_dim"] * 2**i
        if width % h:
            raise InvalidModelConfig(
                f"num_heads[{i}] = {h} must divide stage {i + 1}'s width embed_dim · 2^{i} = {width}"
            )
    grid = p["image_size"] // p["patch_size"]
    stages = len(depths)
    if grid % 2 ** (stages - 1):
        raise InvalidModelConfig(
            f"depths: {stages} stages need the {grid}×{grid} patch grid ({p['image_size']} px / patch "
            f"{p['patch_size']}) to halve evenly {stages - 1} times; use at most "
            f"{_max_stages(grid)} stages, a smaller patch_size or a larger image_size"
        )
    window, maps = p["window_size"], stage_maps(p)
    for i, side in enumerate(maps):
        if side % window:
            problem = (
                "a larger window fails in transformers with a bare RuntimeError"
                if window > side
                else f"transformers would pad it to {-(-side // window) * window} with zero tokens that join "
                "the attention"
            )
            choices = [w for w in range(1, min(maps) + 1) if all(m % w == 0 for m in maps)]
            raise InvalidModelConfig(
                f"window_size {window} must divide every stage's feature map {maps} (stage {i + 1} is "
                f"{side}×{side} at {p['image_size']} px / patch {p['patch_size']}): {problem}; "
                f"valid windows here: {choices}"
            )


def _max_stages(grid: int) -> int:
    stages = 1
    while grid % 2**stages == 0:
        stages += 1
    return stages


def build_model(
    params: dict[str, Any], class_names: Sequence[str] = CIFAR10_CLASSES
) -> ViTForImageClassification | SwinForImageClassification:
    """A randomly initialised classifier (never downloads weights) after `validate`."""
    p = validate(params)
    labels = {"id2label": dict(enumerate(class_names)), "label2id": {n: i for i, n in enumerate(class_names)}}
    dropouts = {k: float(p[k]) for k in ("hidden_dropout_prob", "attention_probs_dropout_prob")}
    if p["model_type"] == "vit":
        intermediate = p["intermediate_size"] or round(p["hidden_size"] * float(p["mlp_ratio"]))
        config = ViTConfig(
            image_size=p["image_size"],
            patch_size=p["patch_size"],
            hidden_size=p["hidden_size"],
            num_hidden_layers=p["num_hidden_layers"],
            num_attention_heads=p["num_attention_heads"],
            intermediate_size=intermediate,
            **dropouts,
            **labels,
        )
        return ViTForImageClassification(config)
    config = SwinConfig(
        image_size=p["image_size"],
        patch_size=p["patch_size"],
        embed_dim=p["embed_dim"],
        depths=list(p["depths"]),
        num_heads=list(p["num_heads"]),
        window_size=p["window_size"],
        mlp_ratio=float(p["mlp_ratio"]),
        drop_path_rate=float(p["drop_path_rate"]),
        **dropouts,
        **labels,
    )
    return SwinForImageClassification(config)


def attention_macs(params: dict[str, Any]) -> int:
    """Multiply-adds of q·kᵀ and attention·v per image, which torchinfo cannot see (functional matmuls)."""
    p = validate(params)
    if p["model_type"] == "vit":
        tokens = (p["image_size"] // p["patch_size"]) ** 2 + 1
        return 2 * tokens * tokens * p["hidden_size"] * p["num_hidden_layers"]
    total = 0
    for i, (side, depth) in enumerate(zip(stage_maps(p), p["depths"], strict=True)):
        window = min(p["window_size"], side)
        total += 2 * side * side * window * window * p["embed_dim"] * 2**i * depth
    return total


def layer_macs(model: torch.nn.Module, image_size: int) -> int:
    """Multiply-adds of every Linear and Conv2d for one image, counted by hooks on a forward pass."""
    total = 0

    def count(module: torch.nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += module.weight.numel() * output.numel() // module.weight.shape[0]

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    hooks = [m.register_forward_hook(count) for m in layers]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, image_size, image_size))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def describe(params: dict[str, Any], batch_size: int = 1) -> dict[str, Any]:
    """Size and cost of any valid config: parameters, MACs per image, activation memory for a batch.

    torchinfo gives the parameter count and its forward/backward pass size (`activation_bytes`, a lower
    bound on training memory beyond weights and optimizer state), from one pass at batch 1 scaled to
    `batch_size` (so a ViT-B at 224 px is not run at batch 128 on a CPU to learn it needs gigabytes).
    MACs are counted here instead: torchinfo 1.8 multiplies a Linear's parameters by the batch only, not
    by the tokens, which undercounts a transformer ~N-fold; attention matmuls are added analytically.
    """
    from torchinfo import summary

    p = validate(params)
    model = build_model(p)
    size = p["image_size"]
    stats = summary(model, input_size=(1, 3, size, size), verbose=0, device="cpu")
    linear = layer_macs(model, size)
    attn = attention_macs(p)
    return {
        "model_type": p["model_type"],
        "params": int(stats.total_params),
        "macs_per_image": linear + attn,
        "layer_macs_per_image": linear,
        "attention_macs_per_image": attn,
        "activation_bytes": int(stats.total_output_bytes) * batch_size,
        "param_bytes": int(stats.total_param_bytes),
        "batch_size": batch_size,
        "image_size": size,
    }


def format_description(info: dict[str, Any]) -> str:
    """One line for logs: `1.79M params, 0.29 GMACs/img, activations 0.10 GB at batch 128`."""
    return (
        f"{info['params'] / 1e6:.2f}M params, {info['macs_per_image'] / 1e9:.2f} GMACs/img, "
        f"activations {info['activation_bytes'] / 1e9:.2f} GB at batch {info['batch_size']}"
    )


def logits(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Float32 logits whatever the autocast dtype (losses and argmax stay comparable)."""
    return model(pixel_values=pixel_values).logits.float()


__all__ = [
    "CIFAR10_CLASSES",
    "InvalidModelConfig",
    "attention_macs",
    "build_model",
    "describe",
    "layer_macs",
    "format_description",
    "logits",
    "model_params",
    "stage_maps",
    "validate",
]
