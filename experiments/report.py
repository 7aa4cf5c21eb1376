"""`report.md` + plots for one task, generated from what the runs recorded (no number is typed in by hand)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from statistics import mean
from typing import Any

TITLES = {
    "imdb": "IMDB sentiment — multi-layer GRU from scratch (assignment 2-1-2)",
    "cifar": "CIFAR-10 — ViT vs Swin from scratch (assignment 2-2-2)",
}
TARGETS = {"imdb": (0.88, 0.90), "cifar": (0.73, 0.80)}
COLUMNS = {
    "imdb": [("layers", "num_layers"), ("hidden", "hidden_dim"), ("embed", "embed_dim"), ("bidir", "is_bidirectional"),
             ("dropout", "dropout"), ("pooling", "pooling"), ("batch", "batch_size"), ("lr", "lr")],
    "cifar": [("family", "model_type"), ("patch", "patch_size"), ("width", "width"), ("depth", "depth"),
              ("heads", "heads"), ("window", "window_size"), ("batch", "batch_size"), ("lr", "lr")],
}


def knob(config: dict[str, Any], key: str) -> Any:
    """A config value as the table shows it (vision widths/depths differ by family)."""
    vit = config.get("model_type") == "vit"
    if key == "lr":
        return config.get("lr", (config.get("optimizer_params") or {}).get("lr"))
    if key == "width":
        return config.get("hidden_size") if vit else config.get("embed_dim")
    if key == "depth":
        return config.get("num_hidden_layers") if vit else config.get("depths")
    if key == "heads":
        return config.get("num_attention_heads") if vit else config.get("num_heads")
    if key == "window_size" and vit:
        return "-"
    return config.get(key)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2g}" if value < 0.01 else f"{value:.3g}"
    if isinstance(value, list):
        return "/".join(str(v) for v in value)
    return str(value)


def model_table(task: str, ranked: list) -> str:
    unit = "seq/s" if task == "imdb" else "img/s"
    header = ["", "model", "source", *[c for c, _ in COLUMNS[task]], "params", "epochs", "val acc", "test acc",
              "train time", unit]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, e in enumerate(ranked):
        cells = ["★" if i == 0 else "", f"`{e.name}`", e.source, *[fmt(knob(e.config, k)) for _, k in COLUMNS[task]],
                 f"{e.params / 1e6:.2f} M" if e.params else "-", str(e.epochs), f"{e.val_accuracy:.4f}",
                 f"{e.test_accuracy:.4f}", f"{e.train_seconds / 60:.1f} min",
                 f"{e.throughput:.0f}" if e.throughput else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison(task: str, ranked: list) -> list[str]:
    """A few sentences computed from the table."""
    best = ranked[0]
    floor, aim = TARGETS[task]
    text = [
        f"Best by validation accuracy: `{best.name}` — val {best.val_accuracy:.2%}, test {best.test_accuracy:.2%} "
        f"({'meets' if best.test_accuracy >= floor else 'is below'} the {floor:.0%} floor, "
        f"{'meets' if best.test_accuracy >= aim else f'{(aim - best.test_accuracy) * 100:.1f} points short of'} "
        f"the {aim:.0%} aim)."
    ]
    for e in ranked:
        if e.test_accuracy_at_training is not None:
            text.append(
                f"`{e.name}` was trained on {e.machine.get('gpu', 'another machine')}"
                f"{' (bf16 autocast)' if e.machine.get('gpu') else ''}, where its test accuracy "
                f"was {e.test_accuracy_at_training:.2%}; the table gives {e.test_accuracy:.2%}, re-measured here in "
                "float32 by the same evaluation `experiments.evaluate` runs."
            )
    if task == "imdb":
        # compare like with like: the one-config runs train on the full split, searches may use a subset
        pool = [e for e in ranked if e.source.startswith("one-config")] or ranked
        bi = [e for e in pool if e.config.get("is_bidirectional")]
        uni = [e for e in pool if not e.config.get("is_bidirectional")]
        if bi and uni:
            rate = [e.throughput for e in bi if e.throughput], [e.throughput for e in uni if e.throughput]
            cost = f", at {mean(rate[0]) / mean(rate[1]):.2f}× the training throughput" if all(rate) else ""
            text.append(
                f"Bidirectional models averaged {mean(e.test_accuracy for e in bi):.2%} test accuracy against "
                f"{mean(e.test_accuracy for e in uni):.2%} for one direction ({len(bi)} vs {len(uni)} models){cost}."
            )
        by_depth = {}
        for e in pool:
            by_depth.setdefault(e.config.get("num_layers"), []).append(e.test_accuracy)
        if len(by_depth) > 1:
            parts = [f"{d} layer{'s' if d != 1 else ''}: {mean(v):.2%}" for d, v in sorted(by_depth.items())]
            text.append("Mean test accuracy by depth — " + "; ".join(parts) + ".")
    else:
        families = {}
        for e in ranked:
            families.setdefault(e.family, []).append(e)
        if len(families) > 1:
            parts = []
            for family, models in sorted(families.items()):
                top = models[0]
                speed = f", {top.throughput:.0f} img/s" if top.throughput else ""
                size = f"{top.params / 1e6:.2f} M params" if top.params else "? params"
                parts.append(f"best {family.upper()} `{top.name}`: test {top.test_accuracy:.2%} with {size}{speed}")
            text.append("; ".join(parts) + ".")
            vit, swin = families.get("vit", [None])[0], families.get("swin", [None])[0]
            same_device = vit and swin and vit.machine.get("gpu") == swin.machine.get("gpu")
            if same_device and vit.throughput and swin.throughput:
                tokens = {e.family: (e.config["image_size"] // e.config["patch_size"]) ** 2 for e in (vit, swin)}
                text.append(
                    f"On the same device ViT trained {vit.throughput / swin.throughput:.2f}× as many images per "
                    f"second as Swin ({vit.throughput:.0f} vs {swin.throughput:.0f} img/s): {tokens['vit']} patch "
                    f"tokens under global attention against {tokens['swin']} in Swin's first stage."
                )
            if vit and swin and vit.params and swin.params:
                text.append(
                    f"Per million parameters, Swin reached {swin.test_accuracy / (swin.params / 1e6):.1%} and ViT "
                    f"{vit.test_accuracy / (vit.params / 1e6):.1%} test accuracy."
                )
    return text


def plot_learning_curves(ranked: list, path: Path, top: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for e in ranked[:top]:
        ax.plot([h["epoch"] for h in e.history], [h["val_accuracy"] for h in e.history], marker="o", label=e.name)
    ax.set(xlabel="epoch", ylabel="validation accuracy", title="Learning curves (validation)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_search(searches: list[dict[str, Any]], path: Path) -> bool:
    """Best validation accuracy of every search trial against each searched hyperparameter."""
    rows = [r for s in searches for r in s["rows"] if r["best_val_accuracy"] is not None]
    if not rows:
        return False
    names = sorted(n for n in set.union(*(set(r["params"]) for r in rows))
                   if len({str(r["params"].get(n)) for r in rows}) > 1)
    if not names:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols, rows_needed = 4, (len(names) + 3) // 4
    fig, axes = plt.subplots(rows_needed, cols, figsize=(12, 2.6 * rows_needed), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        points = [(r["params"][name], r["best_val_accuracy"]) for r in rows if name in r["params"]]
        xs = [p[0] for p in points]
        if all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs):
            ax.scatter(xs, [p[1] for p in points], s=14)
            if min(xs) > 0 and max(xs) / min(xs) > 20:
                ax.set_xscale("log")
        else:
            labels = sorted({str(x) for x in xs})
            ax.scatter([labels.index(str(x)) for x in xs], [p[1] for p in points], s=14)
            ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=20)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("Search trials: best validation accuracy vs each hyperparameter")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_efficiency(ranked: list, path: Path) -> bool:
    """Vision: test accuracy against size and against speed, one colour per family."""
    points = [e for e in ranked if e.params and e.throughput]
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for family in sorted({e.family for e in points}):
        group = [e for e in points if e.family == family]
        left.scatter([e.params / 1e6 for e in group], [e.test_accuracy for e in group], label=family.upper())
        right.scatter([e.throughput for e in group], [e.test_accuracy for e in group], label=family.upper())
    left.set(xlabel="parameters (M)", ylabel="test accuracy", title="Accuracy vs size")
    right.set(xlabel="training img/s", ylabel="test accuracy", title="Accuracy vs speed")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def search_section(searches: list[dict[str, Any]]) -> list[str]:
    from search.importance import param_importance

    lines = []
    for s in searches:
        lines.append(
            f"- `{s['search']}` ({s['searcher']} + {s['scheduler']}): {s['trials']} trials, {s['trial_epochs']} "
            f"trial-epochs in {s['wall_seconds'] / 60:.1f} min — {s['completed']} completed, {s['stopped_early']} "
            f"stopped early, {s['errored']} errored; best val {s['best_val_accuracy']:.4f}. "
            f"Command: `{s.get('command', '')}`"
        )
        importance = param_importance(s["rows"])
        if importance:
            ranked = ", ".join(f"{k} {v:.2f}" for k, v in sorted(importance.items(), key=lambda kv: -kv[1]))
            lines.append(f"  - Parameter importance (Optuna fANOVA, on best val accuracy): {ranked}")
    return lines


def write_report(task: str, ranked: list, searches: list[dict[str, Any]], folder: Path, command: str,
                 machine: dict[str, Any], wall_seconds: float, benchmarks: Path) -> Path:
    plots = []
    plot_learning_curves(ranked, folder / "learning_curves.png")
    plots.append(("Learning curves", "learning_curves.png"))
    if plot_search(searches, folder / "search_hyperparameters.png"):
        plots.append(("Search trials against each hyperparameter", "search_hyperparameters.png"))
    if task == "cifar" and plot_efficiency(ranked, folder / "accuracy_vs_cost.png"):
        plots.append(("Accuracy vs parameters and vs throughput", "accuracy_vs_cost.png"))
    efficiency = benchmarks / "search_efficiency.md"
    if task == "imdb" and efficiency.is_file() and (benchmarks / "search_efficiency.png").is_file():
        shutil.copy2(benchmarks / "search_efficiency.png", folder / "search_efficiency.png")
    else:
        efficiency = None
    lines = [
        f"# {TITLES[task]}", "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}` "
        f"(summarizer wall time {wall_seconds:.0f} s). Winners are picked by validation accuracy; the test split "
        "is used once per model, for the number reported.", "",
        "## Models", "", model_table(task, ranked), "",
        "## Comparison", "", *[f"- {t}" for t in comparison(task, ranked)], "",
    ]
    if searches:
        lines += ["## Searches", "", *search_section(searches), ""]
    lines += ["## Plots", ""]
    for title, name in plots:
        lines += [f"![{title}]({name})", ""]
    if efficiency is not None:
        lines += ["## Search efficiency (Optuna + ASHA vs random + FIFO)", "", efficiency.read_text(), ""]
    lines += ["## How these numbers were produced", ""]
    for e in ranked:
        where = ", ".join(f"{k}={v}" for k, v in e.machine.items() if k in ("cpu", "torch_threads", "gpu"))
        lines.append(f"- `{e.name}`: `{e.command}`" + (f" — {where}" if where else ""))
    lines += [f"- report: `{command}` — machine: {json.dumps(machine)}", ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
