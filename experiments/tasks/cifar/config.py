"""CIFAR-10 vision configs: one flat dataclass for ViT and Swin (JSON round-trip, validated) and presets.

Flat, because search spaces sample flat dicts; `depths` / `num_heads` also accept "2,2,2" strings so a
sampler can offer them as plain categorical choices. The model shape is checked by models.vision.validate.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

from data_pipes.cifar10 import AUGMENT_MAX
from experiments.core.config import BaseConfig, resolve_config
from experiments.core.errors import ConfigError
from experiments.core.training import PRECISIONS
from models.vision import MODEL_TYPES, InvalidModelConfig, model_params, validate

INT_FIELDS = ("image_size", "patch_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
              "embed_dim", "window_size", "seed", "batch_size", "epochs", "augment_strength")


def _int_list(value: Any) -> Any:
    """[2, 2], (2, 2) or "2,2" → [2, 2]; anything else is left for validation to reject."""
    if isinstance(value, str):
        try:
            return [int(v) for v in value.replace("-", ",").split(",") if v.strip()]
        except ValueError:
            return value
    if isinstance(value, (list, tuple)):
        return [int(v) if isinstance(v, numbers.Integral) else v for v in value]
    return value


@dataclass
class VisionConfig(BaseConfig):
    """One CIFAR-10 run: model shape (ViT or Swin fields, the other type's are ignored) + training recipe."""

    TASK = "cifar"

    config_name: str = "custom"
    model_type: str = "vit"
    image_size: int = 32
    patch_size: int = 4
    # ViT
    hidden_size: int = 192
    num_hidden_layers: int = 6
    num_attention_heads: int = 3
    intermediate_size: int | None = None  # None: hidden_size · mlp_ratio
    # Swin
    embed_dim: int = 64
    depths: list[int] = field(default_factory=lambda: [2, 2, 2])
    num_heads: list[int] = field(default_factory=lambda: [2, 4, 8])
    window_size: int = 4
    # both
    mlp_ratio: float = 2.0
    drop_path_rate: float = 0.0
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    # training: AdamW, linear warm-up then cosine to 0 within the epochs
    seed: int = 1
    batch_size: int = 128
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    mixup_prob: float = 0.0
    cutmix_prob: float = 0.0
    augment_strength: int = 0
    precision: str = "fp32"  # one of PRECISIONS (experiments.benchmarks.cifar_precision measures them)

    def __post_init__(self) -> None:
        self.depths, self.num_heads = _int_list(self.depths), _int_list(self.num_heads)
        for name in INT_FIELDS + ("intermediate_size",):
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
                setattr(self, name, int(value))
        super().__post_init__()
        try:
            validate(self.model_params())
        except InvalidModelConfig as error:
            raise ConfigError(f"invalid config {self.config_name!r}: {error}") from None

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (self.model_type in MODEL_TYPES, f"model_type must be one of {MODEL_TYPES}"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size must be an integer >= 1"),
            (isinstance(self.epochs, int) and self.epochs >= 1, "epochs must be an integer >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0 <= self.warmup_fraction < 1, "warmup_fraction must be in [0, 1)"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (self.grad_clip >= 0, "grad_clip must be >= 0 (0 disables clipping)"),
            (0 <= self.mixup_prob <= 1, "mixup_prob must be in [0, 1]"),
            (0 <= self.cutmix_prob <= 1, "cutmix_prob must be in [0, 1]"),
            (self.mixup_prob + self.cutmix_prob <= 1, "mixup_prob + cutmix_prob must be <= 1"),
            (
                isinstance(self.augment_strength, int) and 0 <= self.augment_strength <= AUGMENT_MAX,
                f"augment_strength must be an integer in [0, {AUGMENT_MAX}]",
            ),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
        ]

    def model_params(self) -> dict[str, Any]:
        """The flat dict models.vision.build_model takes (this model type's keys only)."""
        return model_params(asdict(self))


_RECIPE = dict(batch_size=128, epochs=30, lr=1e-3, weight_decay=0.05, label_smoothing=0.1, augment_strength=1)

# The assignment's Swin as given: window 5 divides no stage map at 32 px (every patch grid is a power of
# two), so it is rejected with the reason when resolved; 'swin_assignment_w4' is the nearest valid one.
REJECTED_PRESETS: dict[str, dict[str, Any]] = {
    "swin_assignment": dict(
        config_name="swin_assignment", model_type="swin", image_size=32, patch_size=4, embed_dim=32,
        depths=[2], num_heads=[4], window_size=5, mlp_ratio=4.0, drop_path_rate=0.1, **_RECIPE,
    ),
}

VISION_PRESETS: dict[str, VisionConfig] = {
    # the assignment's ViT (ViT-B/16 at 224 px, CIFAR upsampled 7×): valid, but `describe` gives 85.8M
    # params, 17.6 GMACs per image (~140× vit_small_p4) and ~21 GB of activations at batch 128: GPU only
    "vit_assignment": VisionConfig(
        config_name="vit_assignment", model_type="vit", image_size=224, patch_size=16, hidden_size=768,
        num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, **_RECIPE,
    ),
    "swin_assignment_w4": VisionConfig(
        **{**REJECTED_PRESETS["swin_assignment"], "config_name": "swin_assignment_w4", "window_size": 4}
    ),
    # from scratch at 32 px: 8×8 patches of 4 px, 65 tokens
    "vit_small_p4": VisionConfig(
        config_name="vit_small_p4", model_type="vit", patch_size=4, hidden_size=192, num_hidden_layers=6,
        num_attention_heads=3, mlp_ratio=2.0, **_RECIPE,
    ),
    "vit_tiny_p4": VisionConfig(
        config_name="vit_tiny_p4", model_type="vit", patch_size=4, hidden_size=128, num_hidden_layers=4,
        num_attention_heads=4, mlp_ratio=2.0, **_RECIPE,
    ),
    # 16×16 grid of 2 px patches, windows of 4, maps 16 → 8 → 4
    "swin_small_p2": VisionConfig(
        config_name="swin_small_p2", model_type="swin", patch_size=2, embed_dim=64, depths=[2, 2, 2],
        num_heads=[2, 4, 8], window_size=4, mlp_ratio=2.0, drop_path_rate=0.1, **_RECIPE,
    ),
    # the same Swin, trained longer on a GPU (bigger batch, stronger regularisation for the longer run)
    "swin_small_p2_gpu": VisionConfig(
        config_name="swin_small_p2_gpu", model_type="swin", patch_size=2, embed_dim=64, depths=[2, 2, 2],
        num_heads=[2, 4, 8], window_size=4, mlp_ratio=2.0, drop_path_rate=0.1, batch_size=512, epochs=80, lr=2e-3,
        weight_decay=0.05, warmup_fraction=0.05, label_smoothing=0.1, augment_strength=1, cutmix_prob=0.3,
        mixup_prob=0.2,
    ),
    "vit_small_p4_gpu": VisionConfig(
        config_name="vit_small_p4_gpu", model_type="vit", patch_size=4, hidden_size=192, num_hidden_layers=6,
        num_attention_heads=3, mlp_ratio=2.0, batch_size=512, epochs=80, lr=2e-3, weight_decay=0.05,
        warmup_fraction=0.05, label_smoothing=0.1, augment_strength=1, cutmix_prob=0.3, mixup_prob=0.2,
    ),
}


def resolve_vision_config(name_or_path: str) -> VisionConfig:
    """A preset name or a path to a config JSON (rejected presets raise ConfigError with the reason)."""
    return resolve_config(name_or_path, VisionConfig, VISION_PRESETS, REJECTED_PRESETS)


__all__ = [
    "VisionConfig",
    "VISION_PRESETS",
    "REJECTED_PRESETS",
    "resolve_vision_config",
]
