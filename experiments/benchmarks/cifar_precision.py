"""What pays for CIFAR-10 training on this CPU: bf16 autocast, channels-last, torch.compile, and one trial on every
thread against trials side by side on one thread each. Training steps (augmentation, forward, backward, AdamW) of
one configuration on the same real batches; each layout's variants are interleaved in rounds; prints images per
second and every cell's ratio to fp32 in the first layout.

    python -m experiments.benchmarks.cifar_precision --data-dir ../shared/data/cifar10 --record

A layout `PxT` runs P processes of T torch threads at once, each timing the same steps; its speed is their sum
(what P trials of T threads would train together). Speed only: a variant that pays is adopted after a training
shows it reaches fp32's validation accuracy. `--record` writes
`model_checkpoints/assignment2-2-2/cifar_precision.json` with the machine and load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from experiments.benchmarks.precision import medians, time_variants, write_record
from experiments.core.cli import command_line, run_cli
from experiments.core.errors import UsageError
from experiments.core.machine_load import load_average

RECORD = Path("model_checkpoints/assignment2-2-2/cifar_precision.json")
VARIANTS = ("fp32", "bf16", "bf16_channels_last", "compile")
LAYOUT = re.compile(r"^(\d+)x(\d+)$")


def batches(data_dir: str, images: int, config, seed: int) -> list[tuple]:
    """`images` training images, cut into the trial's batches (raw uint8: each step augments its own)."""
    from data_pipes import cifar10

    data = cifar10.load(data_dir, subset=images, seed=seed)
    size = config.batch_size
    return [(data.train.images[i:i + size], data.train.labels[i:i + size], data.mean, data.std)
            for i in range(0, len(data.train) - size + 1, size)]


def make_step(config, variant: str):
    """One training step of a fresh model as `train_vision` takes it, under the variant; returns images trained."""
    import torch
    import torch.nn.functional as F

    from data_pipes.cifar10 import color_jitter, crop_flip, normalize, to_tensor
    from models.vision import build_model, logits

    torch.manual_seed(config.seed)
    model = build_model(config.model_params(), [str(i) for i in range(10)])
    channels_last = variant == "bf16_channels_last"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    forward = torch.compile(model) if variant == "compile" else model
    cpu = torch.device("cpu")

    def step(batch) -> int:
        images, labels, mean, std = batch
        x = color_jitter(crop_flip(to_tensor(images, cpu)), config.augment_strength)
        x = normalize(x, mean, std, config.image_size)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.startswith("bf16")):
            out = logits(forward, x)
        loss = F.cross_entropy(out.float(), torch.from_numpy(labels.astype(np.int64)),
                               label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(labels)

    return step


def time_in_process(config_name: str, data_dir: str, images: int, threads: int, variants: list[str],
                    rounds: int) -> dict[str, list[float]]:
    """One process of a layout: its own batches, its own threads, every variant timed in rounds."""
    import torch

    from experiments.tasks.cifar.config import resolve_vision_config

    torch.set_num_threads(threads)
    config = resolve_vision_config(config_name)
    work = batches(data_dir, images, config, config.seed)
    return time_variants(lambda variant: make_step(config, variant), work, variants, rounds)


def time_layout(processes: int, threads: int, args: argparse.Namespace) -> dict[str, list[float]]:
    """Images per second of P processes at once, summed per variant and round."""
    job = (args.config, args.data_dir, args.images, threads, args.variants, args.rounds)
    if processes == 1:
        return time_in_process(*job)
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = [f.result() for f in [pool.submit(time_in_process, *job) for _ in range(processes)]]
    return {v: [sum(p[v][r] for p in parts) for r in range(args.rounds)] for v in args.variants}


def main(argv: list[str] | None = None) -> int:
    import torch

    from experiments.tasks.cifar.config import resolve_vision_config

    threads = torch.get_num_threads()
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.cifar_precision",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 laid out like the hub repository")
    parser.add_argument("--config", default="swin_small_p2", help="a preset or a config JSON")
    parser.add_argument("--images", type=int, default=1024, help="training images timed per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant, interleaved")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--layouts", nargs="+", default=[f"1x{threads}", f"{threads}x1"],
                        help=f"processes x torch threads, each timed apart (default 1x{threads} {threads}x1)")
    parser.add_argument("--record", action="store_true", help=f"write {RECORD}")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        raise UsageError(f"--rounds must be at least 1, got {args.rounds}")
    layouts = [LAYOUT.match(layout) for layout in args.layouts]
    if not all(layouts) or any(int(m[1]) < 1 or int(m[2]) < 1 for m in layouts):
        raise UsageError(f"--layouts: each is PxT, processes x threads, both at least 1 (got {' '.join(args.layouts)})")
    if not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir} is not a folder")
    config = resolve_vision_config(args.config)
    if args.images < 2 * config.batch_size:
        raise UsageError(f"--images must be at least two batches of {config.batch_size}, got {args.images}")
    load_start = load_average()
    speeds, median = {}, {}
    for layout, match in zip(args.layouts, layouts, strict=True):
        print(f"layout {layout} ({match[1]} process(es) x {match[2]} thread(s)):")
        speeds[layout] = time_layout(int(match[1]), int(match[2]), args)
        median[layout] = medians(speeds[layout], "images")
    first = args.layouts[0]
    if "fp32" in median[first]:
        for layout in args.layouts[1:]:
            print(f"{layout} against {first} fp32: " + ", ".join(
                f"{v} {m / median[first]['fp32']:.2f}x" for v, m in median[layout].items()))
    if args.record:
        write_record(RECORD, command_line("experiments.benchmarks.cifar_precision"), config.to_dict(), speeds,
                     median, threads, load_start, images_per_round=args.images, rounds=args.rounds,
                     layouts=args.layouts)
    return 0


if __name__ == "__main__":
    run_cli(main)
