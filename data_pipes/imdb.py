"""IMDB reviews → fixed-length token-id arrays, tokenized once and cached on disk.

The tokenizer is fixed for the whole project (not a hyperparameter): a word-level vocabulary of 30,000 (words +
punctuation, lower-cased, `<br />` removed) trained on the training part of the train split only. 30k entries keep
a 128-wide embedding at 15 MB, inside the 25 MB budget for a committed weight file.

How many tokens a model reads is its config's `max_len` (default 400, what every model before it read): a longer
review keeps its first quarter from its head and the rest from its tail, where the verdict usually is. The cache
stores up to STORED_LEN tokens per review, cut the same way, and `cut` derives any shorter reading from it exactly
(the head and tail of a head-and-tail cut are the original's). Measured on the test split with this tokenizer:
400 tokens keep 82.7 % of reviews whole, 800 keep 96.8 %, 1,000 keep 98.7 % (mean tokens per review 231, 263, 268):
`python -m experiments.benchmarks.imdb_reading_length EXPORT --data-dir ../shared/data/imdb --max-len 400 800 1000`.

Validation holds out whole blocks of 100 adjacent training reviews, not reviews drawn at random: the hub parquet
keeps a movie's reviews in adjacent rows, and IMDB's test split holds other movies than its train split, so a
random split put reviews of trained-on movies in validation and rewarded models that learn movie names (measured
by `experiments.benchmarks.imdb_val_leak`): 42 % of the random split's validation reviews had an adjacent training
review sharing a rare name (the same movie), 0.3 % of the held-out blocks' (only at block edges).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from data_pipes.common import (
    DataSourceError,
    blocked_split,
    cache_key,
    check_load_args,
    load_splits,
    prepared_arrays,
    progress,
    stratified_split,
    stratified_subset,
)

HUB_NAME = "stanfordnlp/imdb"
VOCAB_SIZE = 30_000
MAX_LEN = 400  # tokens a model reads unless its config says otherwise
STORED_LEN = 1024  # tokens cached per review: any max_len up to this is cut from them exactly
VAL_FRACTION = 0.1
VAL_BLOCK = 100  # adjacent reviews held out together; a movie has at most 30 reviews in IMDB
VALIDATION = f"blocks of {VAL_BLOCK} adjacent reviews"  # recorded with every run; older runs: "random"
PAD_ID, UNK_ID = 0, 1
LABELS = ("neg", "pos")
TOKENIZER_SETTINGS = {
    "kind": "word-level",
    "vocab_size": VOCAB_SIZE,
    "stored_len": STORED_LEN,
    "truncation": "head max_len // 4 + tail",
    "lowercase": True,
    "strip_br": True,
}
DATA_SETTINGS = {**TOKENIZER_SETTINGS, "validation": VALIDATION}
CACHE_VERSION = 3  # 2: block validation split; 3: STORED_LEN tokens per review


@dataclass
class TokenizedSplit:
    """Token ids padded with PAD_ID to a fixed width (uint16), true lengths and 0/1 labels."""

    ids: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> TokenizedSplit:
        return TokenizedSplit(self.ids[index], self.lengths[index], self.labels[index])


@dataclass
class ImdbData:
    """Everything a trial needs; plain numpy so Ray's object store shares it without copies."""

    train: TokenizedSplit
    val: TokenizedSplit
    test: TokenizedSplit
    tokenizer_json: str
    fingerprint: str
    settings: dict = field(default_factory=lambda: dict(DATA_SETTINGS))
    data_dir: str | None = None  # where the reviews came from (None: the hub), to re-encode them for old exports

    @property
    def vocab_size(self) -> int:
        return vocab_size(self.tokenizer_json)


def vocab_size(tokenizer_json: str) -> int:
    """Size of the embedding a tokenizer needs (its vocabulary, special tokens included)."""
    return len(json.loads(tokenizer_json)["model"]["vocab"])


def build_tokenizer(texts: list[str]):
    """Train the project's word-level tokenizer (deterministic for the same texts)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer

    tokenizer = Tokenizer(WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Replace("<br />", " "), normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = WordLevelTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=["[PAD]", "[UNK]"])
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def load_tokenizer(tokenizer_json: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer_json)


def head_tokens(max_len: int) -> int:
    """How many tokens a review longer than `max_len` keeps from its head (its first quarter); the rest of
    `max_len` comes from its tail."""
    return max_len // 4


def encode(tokenizer, texts: list[str], max_len: int = STORED_LEN) -> tuple[np.ndarray, np.ndarray]:
    """Texts → (ids uint16 [N, max_len], lengths int32), long reviews cut to head + tail."""
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    ids = np.full((len(texts), max_len), PAD_ID, dtype=np.uint16)
    lengths = np.zeros(len(texts), dtype=np.int32)
    for row, enc in enumerate(encodings):
        tokens = enc.ids
        if len(tokens) > max_len:
            head = head_tokens(max_len)
            tokens = tokens[:head] + tokens[len(tokens) - (max_len - head) :]
        if not tokens:
            tokens = [UNK_ID]  # an empty review still gets one position so pooling is defined
        ids[row, : len(tokens)] = tokens
        lengths[row] = len(tokens)
    return ids, lengths


def cut(split: TokenizedSplit, max_len: int) -> TokenizedSplit:
    """The split as a model reading `max_len` tokens sees it: the same ids `encode(..., max_len)` gives, since
    the stored head and tail contain the shorter cut's head and tail."""
    if max_len >= split.ids.shape[1]:
        return split
    ids = split.ids[:, :max_len].copy()
    long = split.lengths > max_len
    if long.any():
        steps = np.arange(max_len)
        source = np.where(steps < head_tokens(max_len), steps, split.lengths[long, None] - max_len + steps)
        ids[long] = np.take_along_axis(split.ids[long], source, axis=1)
    return TokenizedSplit(ids, np.minimum(split.lengths, max_len).astype(split.lengths.dtype), split.labels)


def validation_split(labels: np.ndarray, validation: str = VALIDATION, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row indices of the train split under a recorded validation protocol: the current one, or
    "random", which runs before the block split used (so their validation can be rebuilt)."""
    if validation == "random":
        return stratified_split(labels, VAL_FRACTION, seed)
    if validation != VALIDATION:
        raise DataSourceError(f"unknown IMDB validation protocol {validation!r}")
    return blocked_split(labels, VAL_FRACTION, seed, VAL_BLOCK)


def _prepare(frames: dict, seed: int) -> dict[str, np.ndarray]:
    """Tokenizer trained on the training part only; token ids of every split, validation held out."""
    train_labels = frames["train"]["label"].to_numpy().astype(np.int8)
    train_idx, val_idx = validation_split(train_labels, VALIDATION, seed)
    train_texts = frames["train"]["text"].tolist()
    progress(f"IMDB: training the word-level tokenizer on {len(train_idx):,} training reviews")
    tokenizer = build_tokenizer([train_texts[i] for i in train_idx])
    progress(f"IMDB: tokenizing {len(frames['train']) + len(frames['test']):,} reviews")
    arrays: dict[str, np.ndarray] = {}
    all_train_ids, all_train_len = encode(tokenizer, train_texts)
    for name, idx in (("train", train_idx), ("val", val_idx)):
        arrays[f"{name}_ids"], arrays[f"{name}_lengths"] = all_train_ids[idx], all_train_len[idx]
        arrays[f"{name}_labels"] = train_labels[idx]
    arrays["test_ids"], arrays["test_lengths"] = encode(tokenizer, frames["test"]["text"].tolist())
    arrays["test_labels"] = frames["test"]["label"].to_numpy().astype(np.int8)
    arrays["tokenizer_json"] = np.array(tokenizer.to_str())
    return arrays


def load(data_dir: str | None = None, subset: int | None = None, seed: int = 0) -> ImdbData:
    """Load IMDB (hub or local copy), tokenized with the project tokenizer; `subset` keeps N train reviews."""
    check_load_args(data_dir, subset, "reviews")
    arrays, key = prepared_arrays(
        "imdb", "IMDB: token ids", data_dir, HUB_NAME, ("train", "test"),
        key_of=lambda fingerprint: cache_key(CACHE_VERSION, fingerprint, DATA_SETTINGS, VAL_FRACTION, seed),
        prepare=lambda frames: _prepare(frames, seed),
    )
    splits = {
        name: TokenizedSplit(arrays[f"{name}_ids"], arrays[f"{name}_lengths"], arrays[f"{name}_labels"])
        for name in ("train", "val", "test")
    }
    if subset is not None:
        splits["train"] = splits["train"].take(stratified_subset(splits["train"].labels, subset, seed))
    return ImdbData(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        tokenizer_json=str(arrays["tokenizer_json"]),
        fingerprint=key,
        data_dir=data_dir,
    )


def encoded_test_split(data: ImdbData, tokenizer_json: str) -> TokenizedSplit:
    """The test split as a model with this tokenizer reads it: the cached ids when it is the data's own tokenizer,
    else the test reviews encoded again (a model trained before the validation split changed has another one)."""
    if tokenizer_json == data.tokenizer_json:
        return data.test
    frames, _ = load_splits(data.data_dir, HUB_NAME, ("test",))
    ids, lengths = encode(load_tokenizer(tokenizer_json), frames["test"]["text"].tolist())
    return TokenizedSplit(ids, lengths, frames["test"]["label"].to_numpy().astype(np.int8))


def length_bucketed_batches(
    lengths: np.ndarray, batch_size: int, shuffle: bool, rng: np.random.Generator | None = None, chunk: int = 50
) -> list[np.ndarray]:
    """Index batches of similar lengths: sort within chunks of `chunk` batches, then shuffle batch order.

    Padding to each batch's longest review then costs little, which on CPU beats `pack_padded_sequence`.
    """
    order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    batches = []
    span = batch_size * chunk
    for start in range(0, len(order), span):
        part = order[start : start + span]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def collate(split: TokenizedSplit, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch: ids cut to the batch's longest review (int64), lengths, float labels."""
    lengths = split.lengths[index]
    ids = split.ids[index, : int(lengths.max())].astype(np.int64)
    return ids, lengths.astype(np.int64), split.labels[index].astype(np.float32)


def texts_to_batch(tokenizer_json: str, texts: list[str], max_len: int = MAX_LEN) -> tuple[np.ndarray, np.ndarray]:
    """Raw reviews → (ids, lengths) exactly as training saw them (used by predict)."""
    ids, lengths = encode(load_tokenizer(tokenizer_json), texts, max_len)
    return ids[:, : int(lengths.max())].astype(np.int64), lengths.astype(np.int64)


__all__ = [
    "DataSourceError",
    "ImdbData",
    "TokenizedSplit",
    "load",
    "length_bucketed_batches",
    "collate",
    "texts_to_batch",
    "cut",
    "MAX_LEN",
    "STORED_LEN",
    "VOCAB_SIZE",
    "TOKENIZER_SETTINGS",
    "DATA_SETTINGS",
]
