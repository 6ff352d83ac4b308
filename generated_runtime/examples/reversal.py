"""Sequence reversal: a small bidirectional Transformer learns y[t] = x[L-1-t] for random token sequences.

Data is generated (numpy, deterministic from the seed and the step). Every position sees the whole sequence (no
causal mask), so the model must learn to route position t to position L-1-t through attention.
Paper profile: dim 128, 4 heads, 2 layers, sequence length 64, vocabulary 36, Adam.

    python generated_runtime/examples/reversal.py --framework torch --profile ci --steps 20
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


@dataclass(frozen=True)
class Config:
    dim: int
    heads: int
    layers: int
    seq_len: int
    vocab: int
    batch: int
    lr: float
    mlp_ratio: int = 4


PROFILES = {
    "ci": Config(dim=32, heads=2, layers=1, seq_len=16, vocab=36, batch=8, lr=3e-3),
    "small": Config(dim=64, heads=4, layers=2, seq_len=32, vocab=36, batch=32, lr=1e-3),
    "paper": Config(dim=128, heads=4, layers=2, seq_len=64, vocab=36, batch=64, lr=1e-3),
}


def build(T: Any, cfg: Config) -> Any:
    nn, F = T.nn, T.nn.functional

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query = nn.Linear(cfg.dim, cfg.dim)
            self.key = nn.Linear(cfg.dim, cfg.dim)
            self.value = nn.Linear(cfg.dim, cfg.dim)
            self.proj = nn.Linear(cfg.dim, cfg.dim)

        def forward(self, x):  # x: (B, L, C)
            B, L, C = x.shape
            H, D = cfg.heads, C // cfg.heads
            q = self.query(x).reshape(B, L, H, D).transpose(1, 2)  # (B, H, L, D)
            k = self.key(x).reshape(B, L, H, D).transpose(1, 2)  # (B, H, L, D)
            v = self.value(x).reshape(B, L, H, D).transpose(1, 2)  # (B, H, L, D)
            att = T.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(D))  # (B, H, L, L)
            att = F.softmax(att, dim=-1)
            y = T.matmul(att, v)  # (B, H, L, D)
            y = y.transpose(1, 2).reshape(B, L, C)  # (B, L, C)
            return self.proj(y)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = nn.LayerNorm(cfg.dim)
            self.attn = SelfAttention()
            self.norm2 = nn.LayerNorm(cfg.dim)
            self.mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.mlp_ratio * cfg.dim), nn.GELU(),
                                     nn.Linear(cfg.mlp_ratio * cfg.dim, cfg.dim))

        def forward(self, x):  # x: (B, L, C)
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class Reverser(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding = nn.Embedding(cfg.vocab, cfg.dim)
            self.position_embedding = nn.Embedding(cfg.seq_len, cfg.dim)
            self.blocks = nn.ModuleList([Block() for _ in range(cfg.layers)])
            self.norm = nn.LayerNorm(cfg.dim)
            self.head = nn.Linear(cfg.dim, cfg.vocab)

        def forward(self, idx, positions):  # idx: (B, L) int64, positions: (L,) int64
            x = self.token_embedding(idx) + self.position_embedding(positions)  # (B, L, C)
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x))  # (B, L, vocab)

    return Reverser()


def make_batch(cfg: Config, seed: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """x: (B, L) random tokens; y: x reversed along the sequence."""
    x = common.numpy_rng(seed, 1, step).integers(0, cfg.vocab, size=(cfg.batch, cfg.seq_len), dtype=np.int64)
    return x, np.ascontiguousarray(x[:, ::-1])


def prepare(T: Any, profile: str, seed: int, device: str = "cpu", batch: int | None = None) -> common.TrainingJob:
    cfg = common.with_batch(PROFILES[profile], batch)
    model = build(T, cfg)
    common.init_parameters(T, model, seed)
    if device != "cpu":
        model = model.to(device)
    optimizer = T.optim.Adam(model.parameters(), lr=cfg.lr)
    positions = common.to_device(T, np.arange(cfg.seq_len, dtype=np.int64), device)

    def batch(step):
        x, y = common.shard_rows(T, *make_batch(cfg, seed, step))
        return common.to_device(T, x, device), common.to_device(T, y, device)

    def loss(batch):
        x, y = batch
        logits = model(x, positions)  # (B, L, vocab)
        return T.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1))

    return common.TrainingJob(model, optimizer, batch, loss, items_per_step=cfg.batch * cfg.seq_len,
                              item_unit="tok", workload="reversal", config=cfg, device=device)


def main() -> None:
    args = common.base_arg_parser(__doc__.splitlines()[0], PROFILES).parse_args()
    T = common.load_framework(args.framework)
    try:
        device = common.setup_distributed(T, args.device)
        common.run_from_args(T, prepare(T, args.profile, args.seed, device, batch=args.batch), args)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"reversal: {exc}") from exc


if __name__ == "__main__":
    main()
