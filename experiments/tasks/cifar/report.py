"""What the CIFAR-10 report says beyond the generic tables: ViT against Swin (accuracy with its uncertainty, speed
on one device, compute and memory per image), the assignment's own starting configurations, and two plots."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from experiments.core.cli import throughput_setting
from experiments.core.errors import ConfigError
from experiments.core.uncertainty import gap_and_error, verdict, with_error

TEST_IMAGES = 10_000


def comparison(ranked: list) -> list[str]:
    """ViT against Swin: best of each, and speed where both were measured on the same device."""
    families: dict[str, list] = {}
    for e in ranked:
        families.setdefault(e.family, []).append(e)
    if len(families) < 2:
        return starting_configs()
    parts = []
    for name, models in sorted(families.items()):
        top = models[0]
        speed = f", {top.throughput:.0f} img/s" if top.throughput else ""
        size = f"{top.params / 1e6:.2f} M params" if top.params else "? params"
        parts.append(f"best {name.upper()} `{top.name}`: test {with_error(top.test_score, TEST_IMAGES, True)} "
                     f"with {size}{speed}")
    text = ["; ".join(parts) + "."]
    vit, swin = families.get("vit", [None])[0], families.get("swin", [None])[0]
    same_device = vit and swin and throughput_setting(vit.machine) == throughput_setting(swin.machine)
    if same_device and vit.throughput and swin.throughput:
        tokens = {e.family: (e.config["image_size"] // e.config["patch_size"]) ** 2 for e in (vit, swin)}
        text.append(
            f"On the same device ViT trained {vit.throughput / swin.throughput:.2f}× as many images per "
            f"second as Swin ({vit.throughput:.0f} vs {swin.throughput:.0f} img/s): {tokens['vit']} patch "
            f"tokens under global attention against {tokens['swin']} in Swin's first stage."
        )
    vit, swin, note = same_recipe_pair(ranked, vit, swin)
    if note:
        text.append(note)
    if vit and swin:
        first, second = sorted((vit, swin), key=lambda e: -e.test_score)
        gap, error = gap_and_error(first.test_score, second.test_score, TEST_IMAGES)
        found = verdict(gap, error)
        budget = ", ".join(f"{e.family.upper()} {training_budget(e)}" for e in (vit, swin))
        text.append(
            f"Accuracy: {first.family.upper()} `{first.name}` leads {second.family.upper()} `{second.name}` by "
            f"{gap * 100:.2f} ± {error * 100:.2f} points on test ({budget}; one seed each): "
            + ("more than twice the standard error of the gap." if found == "better" else
               "within twice the standard error of the gap, no measurable difference.")
        )
        batch = 128
        text.append(
            f"Cost per image: ViT `{vit.name}` {gmacs(vit.config):.3f} GMACs, Swin `{swin.name}` "
            f"{gmacs(swin.config):.3f} GMACs (multiply-adds of one forward pass, the same on any device); memory: "
            f"their activations for a training batch of {batch} take {costs(vit.config)[1] * batch / 1e9:.2f} GB "
            f"(ViT) and {costs(swin.config)[1] * batch / 1e9:.2f} GB (Swin) — torchinfo's forward/backward size, "
            "a lower bound beyond weights and optimizer state, the same on any device."
        )
    return text + starting_configs()


def recipe(entry: Any) -> tuple[str, Any, Any]:
    """What an accuracy compares under: the device, the epochs and the batch size."""
    return throughput_setting(entry.machine), entry.config.get("epochs"), entry.config.get("batch_size")


def same_recipe_pair(ranked: list, vit: Any, swin: Any) -> tuple[Any, Any, str]:
    """The ViT and Swin whose accuracies compare: each family's best when both trained under one recipe, else the
    first pair in validation order that did (and a line saying so), else none."""
    if not (vit and swin) or recipe(vit) == recipe(swin):
        return vit, swin, ""
    for entry in ranked:
        other = next((e for e in ranked if e.family != entry.family and recipe(e) == recipe(entry)), None)
        if other is not None:
            pair = sorted((entry, other), key=lambda e: e.family)  # swin < vit
            return pair[1], pair[0], (
                f"The best ViT (`{vit.name}`) and the best Swin (`{swin.name}`) trained under different recipes "
                f"({describe_recipe(vit)}; {describe_recipe(swin)}), so their accuracies are not compared; the "
                f"best pair trained under one recipe is compared instead ({describe_recipe(entry)}).")
    return None, None, ("No ViT and Swin trained on the same device for the same epochs and batch size: their "
                        "accuracies are not compared.")


def describe_recipe(entry: Any) -> str:
    device, epochs, batch = recipe(entry)
    return f"{entry.family.upper()} {epochs} epochs at batch {batch} on {device}"


def training_budget(entry: Any) -> str:
    """How long a model trained: its configured epochs and batch size."""
    return f"{entry.config.get('epochs')} epochs at batch {entry.config.get('batch_size')}"


def starting_configs() -> list[str]:
    """The assignment's own starting points, built and validated by the same code the searches use."""
    from experiments.tasks.cifar.config import REJECTED_PRESETS, VISION_PRESETS, resolve_vision_config
    from models.vision import describe

    vit = VISION_PRESETS["vit_assignment"]
    info = describe(vit.model_params(), batch_size=vit.batch_size)
    text = [
        f"The assignment's ViT (`vit_assignment`: ViT-B/16 at {vit.image_size} px, CIFAR upsampled) is valid: "
        f"{info['params'] / 1e6:.1f} M params, {info['macs_per_image'] / 1e9:.1f} GMACs per image and "
        f"~{info['activation_bytes'] / 1e9:.0f} GB of activations at batch {vit.batch_size} — a GPU-only model, "
        "so the searches use 32-px ViTs with 4- or 8-px patches instead."
    ]
    for name in REJECTED_PRESETS:
        try:
            resolve_vision_config(name)
        except ConfigError as error:
            text.append(f"The assignment's Swin (`{name}`) is rejected at 32 px: {error}")
    return text


@functools.lru_cache(maxsize=256)
def _costs(config_json: str) -> tuple[float, float]:
    from experiments.tasks.cifar.config import VisionConfig
    from models.vision import describe

    info = describe(VisionConfig.from_dict(json.loads(config_json)).model_params(), batch_size=1)
    return info["macs_per_image"], info["activation_bytes"]


def costs(config: dict[str, Any]) -> tuple[float, float]:
    """Forward multiply-adds and activation bytes (torchinfo's forward/backward size) per image of a config,
    counted once per distinct config."""
    return _costs(json.dumps({k: v for k, v in config.items() if k != "task"}, sort_keys=True))


def gmacs(config: dict[str, Any]) -> float:
    """Forward multiply-adds per image of a config, in billions."""
    return costs(config)[0] / 1e9


def plots(ranked: list, folder: Path) -> list[tuple[str, str]]:
    """Test accuracy against size and against MACs per image (device-independent: throughputs measured on a
    GPU and on a CPU never share an axis), one colour per family and one marker per device, named in the legend;
    the best model's confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    points = [e for e in ranked if e.params]
    if points:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        colours = {name: f"C{index}" for index, name in enumerate(sorted({e.family for e in points}))}
        for name, device in sorted({(e.family, device_kind(e)) for e in points}):
            marker = {"GPU": "o", "CPU": "x"}.get(device, "s")
            group = [e for e in points if e.family == name and device_kind(e) == device]
            accuracy = [e.test_score for e in group]
            label = f"{name.upper()}, {device}"
            left.scatter([e.params / 1e6 for e in group], accuracy, label=label, color=colours[name], marker=marker)
            right.scatter([gmacs(e.config) for e in group], accuracy, label=label, color=colours[name],
                          marker=marker)
        left.set(xlabel="parameters (M)", ylabel="test accuracy",
                 title="Accuracy vs size (GPU and CPU runs differ in epochs)")
        right.set(xlabel="GMACs per image (forward)", ylabel="test accuracy", title="Accuracy vs compute")
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "accuracy_vs_cost.png", dpi=110)
        plt.close(fig)
        written.append(("Accuracy vs parameters and vs MACs per image", "accuracy_vs_cost.png"))
    best = next((e for e in ranked if e.confusion), None)
    if best is not None:
        name = plot_confusion(best, folder / "confusion_matrix.png")
        written.append((f"Test confusion matrix of `{best.name}`", name))
    return written


def device_kind(entry: Any) -> str:
    """GPU or CPU, for a plot's legend: the runs of one device share a budget far more than runs across two."""
    return "GPU" if entry.machine.get("gpu") else "CPU" if entry.machine.get("cpu") else "device not recorded"


def plot_confusion(entry, path: Path) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(entry.confusion)
    rates = counts / counts.sum(axis=1, keepdims=True)
    names = entry.class_names or [str(i) for i in range(len(counts))]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=f"{entry.name}: test confusion (colour: row share)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
