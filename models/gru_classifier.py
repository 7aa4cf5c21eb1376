"""Multi-layer (bi)GRU sentiment classifier that ignores padding exactly.

Batches are right-padded to their longest review. A forward GRU never sees the padding before a real
token, but a plain bidirectional `nn.GRU` would start its backward pass on the padding. So each layer runs
one GRU per direction, and the backward one reads every review reversed within its own length: outputs at
real positions are then independent of how much padding follows, and pooling masks the rest.
"""

from __future__ import annotations

import torch
from torch import nn

POOLINGS = ("last", "max", "mean", "maxmean")


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `length` steps, leaving its padding in place. x: (B, T, F)."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    last = (lengths - 1).unsqueeze(1)
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class GRUClassifier(nn.Module):
    """Embedding → stacked (bi)GRU → mask-aware pooling → linear head (logits, `output_dim` wide)."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 128,
        hidden_dim: int = 128,
        num_layers: int = 2,
        is_bidirectional: bool = False,
        dropout: float = 0.2,
        pooling: str = "maxmean",
        embed_dropout: float = 0.0,
        output_dim: int = 1,
        pad_id: int = 0,
        use_hand_gru: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.directions = 2 if is_bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        # word dropout: Dropout1d on (B, T, E) zeroes whole token vectors (the T "channels") and scales the rest
        # by 1/(1-p); element dropout after it leaves every kept word partly visible
        self.drop_words = nn.Dropout1d(embed_dropout)
        gru_cls = _hand_gru_class() if use_hand_gru else nn.GRU
        self.layers = nn.ModuleList()
        for layer in range(num_layers):
            in_dim = embed_dim if layer == 0 else hidden_dim * self.directions
            self.layers.append(
                nn.ModuleList([gru_cls(in_dim, hidden_dim, batch_first=True) for _ in range(self.directions)])
            )
        features = hidden_dim * self.directions * (2 if pooling == "maxmean" else 1)
        self.head = nn.Linear(features, output_dim)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-token features (B, T, D*H); positions past each length are not meaningful."""
        x = self.dropout(self.drop_words(self.embedding(ids)))
        for index, directions in enumerate(self.layers):
            if index > 0:
                x = self.dropout(x)
            outputs = [directions[0](x)[0]]
            if self.directions == 2:
                backward = directions[1](reverse_within_length(x, lengths))[0]
                outputs.append(reverse_within_length(backward, lengths))
            x = torch.cat(outputs, dim=-1)
        return x

    def pool(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(features.size(1), device=features.device).unsqueeze(0) < lengths.unsqueeze(1))
        mask = mask.unsqueeze(-1)
        if self.pooling == "last":
            hidden = features.size(-1) // self.directions
            last = features.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, features.size(-1))).squeeze(1)
            if self.directions == 1:
                return last
            # the backward direction has read the whole review when it reaches position 0
            return torch.cat([last[:, :hidden], features[:, 0, hidden:]], dim=-1)
        mean = (features * mask).sum(1) / lengths.unsqueeze(1).to(features.dtype)
        if self.pooling == "mean":
            return mean
        maxed = features.masked_fill(~mask, torch.finfo(features.dtype).min).amax(1)
        return maxed if self.pooling == "max" else torch.cat([maxed, mean], dim=-1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(self.encode(ids, lengths), lengths)
        return self.head(self.dropout(pooled))


def _hand_gru_class():
    """The hand-written GRU (slow, for teaching and small runs); imported only when asked for."""
    from models.gru import HandGRU

    return HandGRU
