"""Tests for models.vision (validate/build/describe) and experiments.tasks.cifar.config (configs and presets).

Each validation rule gets a test that checks the message names the field; a few tests pin down the
transformers behaviour the rules exist for, so a transformers upgrade that changes it shows up here.
"""

from __future__ import annotations

import json

import pytest
import torch

from experiments.core.errors import ConfigError
from experiments.tasks.cifar.config import (
    REJECTED_PRESETS,
    VISION_PRESETS,
    VisionConfig,
    resolve_vision_config,
)
from models.vision import CIFAR10_CLASSES, InvalidModelConfig, build_model, describe, validate

VIT = dict(model_type="vit", image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=1,
           num_attention_heads=2, mlp_ratio=2.0)
SWIN = dict(model_type="swin", image_size=32, patch_size=2, embed_dim=8, depths=[1, 1], num_heads=[1, 2],
            window_size=4, mlp_ratio=1.0)


def rejected(params: dict, field: str) -> str:
    with pytest.raises(InvalidModelConfig) as error:
        validate(params)
    message = str(error.value)
    assert field in message and "\n" not in message
    return message


# ---- one test per rule -----------------------------------------------------------------------------


def test_vit_heads_must_divide_hidden():
    message = rejected({**VIT, "hidden_size": 192, "num_attention_heads": 5}, "num_attention_heads")
    assert "190" in message  # what transformers would silently do


def test_patch_must_divide_image():
    rejected({**VIT, "patch_size": 5}, "patch_size")
    rejected({**SWIN, "patch_size": 3}, "patch_size")


def test_swin_depths_and_heads_lengths_must_match():
    rejected({**SWIN, "depths": [1, 1, 1]}, "depths")


def test_swin_stage_width_must_divide_by_heads():
    message = rejected({**SWIN, "num_heads": [1, 3]}, "num_heads[1]")
    assert "16" in message  # embed_dim 8 · 2^1


def test_swin_too_many_stages_for_the_resolution():
    rejected({**SWIN, "depths": [1] * 6, "num_heads": [1] * 6, "window_size": 1}, "depths")


def test_swin_window_must_divide_every_stage_map():
    message = rejected({**SWIN, "window_size": 5}, "window_size")  # 16×16 map padded to 20
    assert "zero tokens" in message
    message = rejected({**SWIN, "depths": [1, 1, 1, 1], "num_heads": [1, 2, 4, 8]}, "window_size")  # 2×2 < 4
    assert "RuntimeError" in message


def test_vit_has_no_drop_path():
    rejected({**VIT, "drop_path_rate": 0.1}, "drop_path_rate")


def test_bad_values_name_their_field():
    rejected({**VIT, "hidden_dropout_prob": 1.0}, "hidden_dropout_prob")
    rejected({**SWIN, "depths": []}, "depths")
    rejected({**VIT, "model_type": "resnet"}, "model_type")


# ---- what transformers does without the rules ------------------------------------------------------


def test_transformers_silently_mishandles_what_validate_rejects():
    from transformers import SwinConfig, SwinForImageClassification, ViTConfig, ViTForImageClassification

    vit_config = ViTConfig(image_size=32, patch_size=4, hidden_size=20, num_hidden_layers=1,
                           num_attention_heads=3, intermediate_size=8)
    vit = ViTForImageClassification(vit_config)
    assert any(p.shape == (18, 20) for p in vit.parameters())  # q/k/v 3 × 6 = 18 wide, not 20: no error
    swin = SwinForImageClassification(SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1, 1],
                                                 num_heads=[1, 1], window_size=5))
    with pytest.raises(RuntimeError):  # 4×4 second stage < window 5
        swin(torch.zeros(1, 3, 32, 32))


# ---- building and describing -----------------------------------------------------------------------


@pytest.mark.parametrize("params", [VIT, SWIN], ids=["vit", "swin"])
def test_build_forward_and_labels(params):
    model = build_model(params).eval()
    with torch.no_grad():
        out = model(pixel_values=torch.randn(2, 3, 32, 32)).logits
    assert out.shape == (2, 10)
    assert model.config.id2label[3] == CIFAR10_CLASSES[3] == "cat"
    assert model.config.label2id["truck"] == 9


def test_describe_counts_params_macs_and_activations():
    small, wide = describe(VIT), describe({**VIT, "hidden_size": 64}, batch_size=4)
    assert small["params"] == sum(p.numel() for p in build_model(VIT).parameters())
    assert wide["params"] > small["params"] and wide["macs_per_image"] > small["macs_per_image"] > 0
    # tokens: 8×8 patches + class token; a Linear's MACs scale with them
    assert small["layer_macs_per_image"] > 65 * 32 * 32
    assert wide["activation_bytes"] == 4 * describe({**VIT, "hidden_size": 64})["activation_bytes"]
    assert describe(SWIN)["attention_macs_per_image"] > 0


# ---- configs and presets ---------------------------------------------------------------------------


def test_config_json_round_trip(tmp_path):
    config = VISION_PRESETS["swin_small_p2"]
    config.to_json(tmp_path / "c.json")
    assert VisionConfig.from_json(tmp_path / "c.json") == config
    assert json.loads((tmp_path / "c.json").read_text())["depths"] == [2, 2, 2]


def test_config_from_flat_search_dict():
    sampled = {"model_type": "swin", "config_name": "s", "patch_size": 2, "embed_dim": 16, "depths": "2,2",
               "num_heads": (2, 4), "window_size": 4, "lr": 3e-4, "batch_size": 64.0}
    config = VisionConfig.from_dict(sampled)
    assert config.depths == [2, 2] and config.num_heads == [2, 4] and config.batch_size == 64
    with pytest.raises(ConfigError, match="unknown config field"):
        VisionConfig.from_dict({"model_type": "vit", "learning_rate": 1.0})


def test_config_wraps_model_errors_and_checks_training_fields():
    with pytest.raises(ConfigError, match="num_attention_heads"):
        VisionConfig(num_attention_heads=5)
    with pytest.raises(ConfigError, match="mixup_prob"):
        VisionConfig(mixup_prob=0.6, cutmix_prob=0.6)
    with pytest.raises(ConfigError, match="augment_strength"):
        VisionConfig(augment_strength=99)


def test_presets_valid_and_assignment_swin_rejected_with_reason():
    for name, config in VISION_PRESETS.items():
        assert config.config_name == name
        validate(config.model_params())
    assert set(REJECTED_PRESETS) == {"swin_assignment"}
    with pytest.raises(ConfigError, match="window_size 5 must divide"):
        resolve_vision_config("swin_assignment")
    assert resolve_vision_config("vit_small_p4") is VISION_PRESETS["vit_small_p4"]
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_vision_config("nope")


def every_shape(space, sampled=None, index=0):
    """Every combination of the space's size parameters (widths, depths, patch, window, MLP ratio) that can be
    sampled together, following the conditions. Training knobs do not change a model's cost per image, nor do head
    counts (they split a width; the test checks this on one pair)."""
    sampled = sampled or {}
    if index == len(space.params):
        yield dict(sampled)
        return
    param = space.params[index]
    sizes = param.kind == "choice" and param.target not in ("batch_size", "num_heads", "num_attention_heads")
    if not param.active(sampled) or not (sizes or param.target == "num_hidden_layers"):
        yield from every_shape(space, sampled, index + 1)
        return
    values = param.choices if param.kind == "choice" else range(int(param.low), int(param.high) + 1)
    for value in values:
        yield from every_shape(space, {**sampled, param.name: value}, index + 1)


def test_the_cpu_space_holds_every_shape_under_its_cost_ceiling():
    """`--space cpu` (the main job's) can sample no model costlier than CPU_MAX_GMACS per image, and no invalid one;
    `--space full` still holds the costlier presets a GPU search is warm-started from, which the CPU space refuses."""
    import argparse

    from experiments.tasks.cifar.report import gmacs
    from experiments.tasks.cifar.task import CPU_MAX_GMACS, space

    def cost(fields):
        return gmacs(VisionConfig.from_dict({**fields, "config_name": "shape"}).to_dict())

    cpu = space(argparse.Namespace(model="both", max_epochs=2, seed=0, space="cpu"))
    shapes = [cpu.to_config({**cpu.constants, "sampled": shape}) for shape in every_shape(cpu)]
    assert {shape["model_type"] for shape in shapes} == {"vit", "swin"} and len(shapes) > 40
    assert max(cost(shape) for shape in shapes) <= CPU_MAX_GMACS
    vit = next(shape for shape in shapes if shape["model_type"] == "vit")
    assert cost({**vit, "num_attention_heads": 2}) == cost({**vit, "num_attention_heads": 6})
    full = space(argparse.Namespace(model="both", max_epochs=2, seed=0, space="full"))
    costly = VISION_PRESETS["vit_small_p4"].to_dict()
    assert gmacs(costly) > CPU_MAX_GMACS and full.point_from_config(costly)
    with pytest.raises(ValueError, match="hidden_size=192 is not one of the searched choices"):
        cpu.point_from_config(costly)


def test_auto_precision_trains_in_bf16_where_the_cpu_computes_it():
    from experiments.core.training import cpu_computes_bf16, trains_in_bf16

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert trains_in_bf16("auto", cpu) is cpu_computes_bf16()
    assert trains_in_bf16("bf16", cpu) and not trains_in_bf16("fp32", cpu) and trains_in_bf16("fp32", cuda)
    assert VisionConfig(precision="auto").precision == "auto"
    with pytest.raises(ConfigError, match="precision"):
        VisionConfig(precision="fp16")
