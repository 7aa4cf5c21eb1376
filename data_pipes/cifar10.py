"""CIFAR-10 → uint8 image arrays decoded once and cached, plus batch augmentation on tensors.

The 60,000 PNGs are decoded once into (N, 32, 32, 3) uint8 arrays and cached on disk, keyed by the source
fingerprint and the cache version only: the validation split (5,000 = 10 % of the train split, stratified,
seeded) is drawn from the cached arrays on every load, which costs milliseconds and lets every seed share
one cache. The test split is only for the final evaluation of a chosen model.

Augmentation works on whole batches already on the training device (no per-image Python): random crop
with 4-pixel zero padding + horizontal flip in one gather, an optional colour jitter (`augment_strength`),
mixup / cutmix producing soft targets, then normalisation and an optional bilinear resize. Everything stays
plain numpy until a batch is taken, so Ray's object store shares the arrays between trials.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from data_pipes.common import (
    DataSourceError,
    cache_key,
    check_load_args,
    prepared_arrays,
    progress,
    stratified_split,
    stratified_subset,
)

HUB_NAME = "uoft-cs/cifar10"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
IMAGE_SHAPE = (32, 32, 3)
VAL_FRACTION = 0.1  # 5,000 of the 50,000 training images
MEAN = (0.4914, 0.4822, 0.4465)  # per-channel statistics of the 50,000 training images
STD = (0.2470, 0.2435, 0.2616)
CROP_PADDING = 4
AUGMENT_MAX = 5  # augment_strength s jitters brightness/contrast/saturation by up to ±0.1·s
MIX_ALPHA = 1.0  # Beta(α, α) for the mixup / cutmix ratio
LUMA = (0.299, 0.587, 0.114)
CACHE_VERSION = 1
DATA_SETTINGS = {
    "val_fraction": VAL_FRACTION,
    "mean": MEAN,
    "std": STD,
    "crop_padding": CROP_PADDING,
    "mix_alpha": MIX_ALPHA,
}


@dataclass
class ImageSplit:
    """uint8 images (N, 32, 32, 3), channels last as stored, and int64 labels."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> ImageSplit:
        return ImageSplit(self.images[index], self.labels[index])


@dataclass
class CifarData:
    """Everything a trial needs; plain numpy so Ray's object store shares it without copies."""

    train: ImageSplit
    val: ImageSplit
    test: ImageSplit
    fingerprint: str
    class_names: tuple[str, ...] = CLASS_NAMES
    mean: np.ndarray = field(default_factory=lambda: np.array(MEAN, dtype=np.float32))
    std: np.ndarray = field(default_factory=lambda: np.array(STD, dtype=np.float32))
    settings: dict = field(default_factory=lambda: dict(DATA_SETTINGS))


def decode_images(cells: list) -> np.ndarray:
    """PNG cells (`{'bytes': ...}` as the hub stores them) → uint8 (N, 32, 32, 3)."""
    from PIL import Image

    out = np.empty((len(cells), *IMAGE_SHAPE), dtype=np.uint8)
    if sys.stderr.isatty():
        from tqdm import tqdm

        cells = tqdm(cells, desc="decoding", unit="img", leave=False, file=sys.stderr)
    for i, cell in enumerate(cells):
        data = cell["bytes"] if isinstance(cell, dict) else cell
        with Image.open(io.BytesIO(data)) as image:
            array = np.asarray(image.convert("RGB"))
        if array.shape != IMAGE_SHAPE:
            raise DataSourceError(f"image {i} is {array.shape}, expected {IMAGE_SHAPE}: not CIFAR-10")
        out[i] = array
    return out


def _decode(frames: dict) -> dict[str, np.ndarray]:
    for split, frame in frames.items():
        missing = {"img", "label"} - set(frame.columns)
        if missing:
            raise DataSourceError(f"the '{split}' split has no column(s) {sorted(missing)}: not CIFAR-10")
    progress(f"CIFAR-10: decoding {sum(len(f) for f in frames.values()):,} images")
    arrays: dict[str, np.ndarray] = {}
    for split, frame in frames.items():
        arrays[f"{split}_images"] = decode_images(frame["img"].tolist())
        arrays[f"{split}_labels"] = frame["label"].to_numpy().astype(np.int64)
    return arrays


def load(data_dir: str | None = None, subset: int | None = None, seed: int = 0) -> CifarData:
    """Load CIFAR-10 (hub or a local copy in the hub layout); `subset` keeps N training images."""
    check_load_args(data_dir, subset, "images")
    arrays, fingerprint = prepared_arrays(
        "cifar10", "CIFAR-10: images", data_dir, HUB_NAME, SPLITS,
        key_of=lambda fingerprint: cache_key(CACHE_VERSION, fingerprint), prepare=_decode,
    )
    full = ImageSplit(arrays["train_images"], arrays["train_labels"])
    train_idx, val_idx = stratified_split(full.labels, VAL_FRACTION, seed)
    train, val = full.take(np.sort(train_idx)), full.take(np.sort(val_idx))
    if subset is not None:
        train = train.take(stratified_subset(train.labels, subset, seed))
    return CifarData(
        train=train,
        val=val,
        test=ImageSplit(arrays["test_images"], arrays["test_labels"]),
        fingerprint=cache_key(fingerprint, VAL_FRACTION, seed),
    )


# ---- batches on the device -------------------------------------------------------------------------


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (B, H, W, C) numpy → float (B, C, H, W) in [0, 1] on `device` (converted after the copy)."""
    if not (images.flags.writeable and images.flags.c_contiguous):  # read-only slices of Ray's object store
        images = np.array(images)
    batch = torch.from_numpy(images).to(device, non_blocking=True)
    return batch.permute(0, 3, 1, 2).float().div_(255.0)


def crop_flip(x: torch.Tensor, padding: int = CROP_PADDING) -> torch.Tensor:
    """Random crop from the zero-padded image and random horizontal flip, per image, in one gather."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding)).permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C)
    dy = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device)
    rows = dy + torch.arange(h, device=x.device)
    cols = dx + torch.arange(w, device=x.device)
    flip = torch.rand(b, 1, device=x.device) < 0.5
    cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def color_jitter(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Brightness, contrast and saturation, each scaled per image by U(1 − 0.1·s, 1 + 0.1·s)."""
    if strength <= 0:
        return x
    factors = 1.0 + (torch.rand(3, x.shape[0], 1, 1, 1, device=x.device) * 2 - 1) * (0.1 * strength)
    luma = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    x = x * factors[0]
    mean_gray = (x * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = (x - mean_gray) * factors[1] + mean_gray
    gray = (x * luma).sum(1, keepdim=True)
    x = (x - gray) * factors[2] + gray
    return x.clamp_(0.0, 1.0)


def mix(
    x: torch.Tensor, labels: torch.Tensor, num_classes: int, mixup_prob: float, cutmix_prob: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """With probability `mixup_prob` mixup, else with `cutmix_prob` cutmix (one box per batch), else none.

    Returns the images and the targets: the int labels when unmixed, soft (B, classes) targets otherwise;
    `F.cross_entropy` takes both, with label smoothing. Draws use torch's CPU generator (restored on resume).
    """
    draw = float(torch.rand(()))
    if draw >= mixup_prob + cutmix_prob or len(labels) < 2:
        return x, labels
    lam = float(torch.distributions.Beta(MIX_ALPHA, MIX_ALPHA).sample())
    perm = torch.randperm(len(labels)).to(x.device)
    if draw < mixup_prob:
        x = lam * x + (1.0 - lam) * x[perm]
    else:
        h, w = x.shape[-2:]
        cut_h, cut_w = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
    onehot = F.one_hot(labels, num_classes).to(x.dtype)
    return x, lam * onehot + (1.0 - lam) * onehot[perm]


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float], image_size: int) -> torch.Tensor:
    """Per-channel (x − mean) / std, then a bilinear resize when the model wants another size."""
    mean_t = torch.tensor(np.array(mean, dtype=np.float32), device=x.device).view(1, -1, 1, 1)  # copies:
    std_t = torch.tensor(np.array(std, dtype=np.float32), device=x.device).view(1, -1, 1, 1)  # Ray's are read-only
    x = (x - mean_t) / std_t
    if x.shape[-1] != image_size or x.shape[-2] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x


def model_input(images: np.ndarray, device: torch.device, image_size: int) -> torch.Tensor:
    """Evaluation/prediction batch: uint8 images → normalised, resized model input (no augmentation)."""
    return normalize(to_tensor(images, device), MEAN, STD, image_size)


__all__ = [
    "DataSourceError",
    "CifarData",
    "ImageSplit",
    "load",
    "decode_images",
    "to_tensor",
    "crop_flip",
    "color_jitter",
    "mix",
    "normalize",
    "model_input",
    "MEAN",
    "STD",
    "AUGMENT_MAX",
    "DATA_SETTINGS",
]
