"""Character-level miniGPT on tiny Shakespeare: a causal Transformer language model, trained and sampled.

Paper profile: dim 256, 8 heads, 6 layers, context 128, AdamW (betas 0.9, 0.95; weight decay 0.1 on matrices,
none on biases, norm scales and embeddings), gradient clipping at norm 1.0.
Data: data/tinyshakespeare.txt (see data/PROVENANCE.md); vocabulary = the sorted set of its characters; the first
90% is the training split. Batches are numpy-drawn offsets, deterministic from (seed, step).
Checkpoints are SafeTensors files (the weights plus the config and the vocabulary as metadata; see Note
[SafeTensors checkpoints] in common.py), so a model trained with one framework samples with the other.

    python generated_runtime/examples/minigpt.py --framework torch --profile ci --steps 20 --save /tmp/gpt.safetensors
    python generated_runtime/examples/minigpt.py --framework vibetensor --sample-from /tmp/gpt.safetensors --length 200 --prompt "ROMEO:"
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CORPUS_PATH = Path(__file__).resolve().parent / "data" / "tinyshakespeare.txt"
CORPUS_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


@dataclass(frozen=True)
class Config:
    dim: int
    heads: int
    layers: int
    context: int
    batch: int
    lr: float
    vocab: int = 65  # set from the corpus
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad_norm: float = 1.0


PROFILES = {
    "ci": Config(dim=32, heads=2, layers=1, context=32, batch=8, lr=3e-3),
    "small": Config(dim=128, heads=4, layers=4, context=64, batch=32, lr=1e-3),
    "paper": Config(dim=256, heads=8, layers=6, context=128, batch=64, lr=1e-3),
}


def build(T: Any, cfg: Config) -> Any:
    nn, F = T.nn, T.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query = nn.Linear(cfg.dim, cfg.dim)
            self.key = nn.Linear(cfg.dim, cfg.dim)
            self.value = nn.Linear(cfg.dim, cfg.dim)
            self.proj = nn.Linear(cfg.dim, cfg.dim)

        def forward(self, x, future):  # x: (B, L, C); future: (L, L) bool, True above the diagonal
            B, L, C = x.shape
            H, D = cfg.heads, C // cfg.heads
            q = self.query(x).reshape(B, L, H, D).transpose(1, 2)  # (B, H, L, D)
            k = self.key(x).reshape(B, L, H, D).transpose(1, 2)  # (B, H, L, D)
            v = self.value(x).reshape(B, L, H, D).transpose(1, 2)  # (B, H, L, D)
            att = T.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(D))  # (B, H, L, L)
            att = F.softmax(att.masked_fill(future, float("-inf")), dim=-1)
            y = T.matmul(att, v).transpose(1, 2).reshape(B, L, C)  # (B, L, C)
            return self.proj(y)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = nn.LayerNorm(cfg.dim)
            self.attn = CausalSelfAttention()
            self.norm2 = nn.LayerNorm(cfg.dim)
            self.mlp = nn.Sequential(nn.Linear(cfg.dim, 4 * cfg.dim), nn.GELU(), nn.Linear(4 * cfg.dim, cfg.dim))

        def forward(self, x, future):  # x: (B, L, C)
            x = x + self.attn(self.norm1(x), future)
            return x + self.mlp(self.norm2(x))

    class MiniGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding = nn.Embedding(cfg.vocab, cfg.dim)
            self.position_embedding = nn.Embedding(cfg.context, cfg.dim)
            self.blocks = nn.ModuleList([Block() for _ in range(cfg.layers)])
            self.norm = nn.LayerNorm(cfg.dim)
            self.head = nn.Linear(cfg.dim, cfg.vocab)

        def forward(self, idx):  # idx: (B, L) int64, L <= context
            B, L = idx.shape
            device = idx.device
            positions = T.arange(L, device=device)  # (L,)
            future = T.tril(T.ones(L, L, device=device)) == 0  # (L, L) bool, True where j > i
            x = self.token_embedding(idx) + self.position_embedding(positions)  # (B, L, C)
            for block in self.blocks:
                x = block(x, future)
            return self.head(self.norm(x))  # (B, L, vocab)

    return MiniGPT()


# ---------------------------------------------------------------------------------------------------------------
# Data


def load_corpus(path: Path = CORPUS_PATH) -> tuple[np.ndarray, str]:
    """The corpus as int64 character ids and the vocabulary string (id -> character)."""
    raw = Path(path).read_bytes()
    if Path(path) == CORPUS_PATH and hashlib.sha256(raw).hexdigest() != CORPUS_SHA256:
        raise ValueError(f"{path}: sha256 differs from {CORPUS_SHA256} (see data/PROVENANCE.md)")
    codes = np.frombuffer(raw.decode("utf-8").encode("utf-32-le"), dtype=np.uint32)  # one code point each
    vocab_codes = np.unique(codes)  # sorted
    return np.searchsorted(vocab_codes, codes).astype(np.int64), "".join(map(chr, vocab_codes))


def make_batch(data: np.ndarray, cfg: Config, seed: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """x, y: (B, context) int64; y is x shifted by one character."""
    train_end = int(0.9 * len(data))
    offsets = common.numpy_rng(seed, 4, step).integers(0, train_end - cfg.context - 1, size=cfg.batch)
    window = offsets[:, None] + np.arange(cfg.context + 1)[None, :]  # (B, context + 1)
    chunk = data[window]
    return np.ascontiguousarray(chunk[:, :-1]), np.ascontiguousarray(chunk[:, 1:])


def make_optimizer(T: Any, model: Any, cfg: Config) -> Any:
    """AdamW; weight decay only on the Linear weight matrices (nanoGPT's grouping by name)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        is_matrix = len(tuple(param.shape)) >= 2 and "embedding" not in name
        (decay if is_matrix else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return T.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def prepare(T: Any, profile: str, seed: int, device: str = "cpu", batch: int | None = None) -> common.TrainingJob:
    data, vocab = load_corpus()
    cfg = dataclasses.replace(common.with_batch(PROFILES[profile], batch), vocab=len(vocab))
    model = build(T, cfg)
    common.init_parameters(T, model, seed)
    if device != "cpu":
        model = model.to(device)

    def batch(step):
        x, y = common.shard_rows(T, *make_batch(data, cfg, seed, step))
        return common.to_device(T, x, device), common.to_device(T, y, device)

    def loss(batch):
        x, y = batch
        logits = model(x)  # (B, L, vocab)
        return T.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1))

    return common.TrainingJob(model, make_optimizer(T, model, cfg), batch, loss,
                              items_per_step=cfg.batch * cfg.context, item_unit="tok",
                              clip_grad_norm=cfg.clip_grad_norm, meta={"vocab": vocab}, workload="minigpt",
                              config=cfg, device=device, checkpoint_extra={"vocab": vocab})


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints and sampling


def save_checkpoint(path: Path, model: Any, cfg: Config, vocab: str) -> None:
    common.save_checkpoint(path, model, "minigpt", cfg, vocab=vocab)


def load_checkpoint(T: Any, path: Path, device: str = "cpu") -> tuple[Any, Config, str]:
    weights, config, metadata = common.read_checkpoint(path, "minigpt")
    try:
        cfg = Config(**{**config, "betas": tuple(config["betas"])})
        vocab = metadata["vocab"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: checkpoint metadata does not describe a miniGPT ({exc})") from exc
    model = build(T, cfg)
    if device != "cpu":
        model = model.to(device)
    common.load_weights(T, model, weights, device)
    return model, cfg, vocab


def generate(T: Any, model: Any, cfg: Config, prompt_ids: list[int], length: int, seed: int = 0,
             temperature: float = 1.0, top_k: int | None = None, device: str = "cpu") -> list[int]:
    """Append ``length`` sampled ids to ``prompt_ids``. Sampling is done in numpy from the last position's logits,
    so it needs nothing from the framework beyond the forward pass."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    rng = common.numpy_rng(seed, 5)
    ids = list(prompt_ids)
    model.eval()
    with T.no_grad():
        for _ in range(length):
            window = np.array([ids[-cfg.context:]], dtype=np.int64)  # (1, L)
            logits = common.to_numpy(model(common.to_device(T, window, device)))[0, -1] / temperature  # (vocab,)
            if top_k is not None and top_k < len(logits):
                logits[logits < np.sort(logits)[-top_k]] = -np.inf
            probs = np.exp(logits - logits.max())
            ids.append(int(rng.choice(len(probs), p=probs / probs.sum())))
    return ids


def sample_text(T: Any, checkpoint: Path, length: int, prompt: str = "\n", seed: int = 0,
                temperature: float = 1.0, top_k: int | None = None, device: str = "cpu") -> str:
    """``length`` new characters sampled from a checkpoint, after ``prompt`` (returned without the prompt)."""
    model, cfg, vocab = load_checkpoint(T, checkpoint, device)
    lookup = {ch: i for i, ch in enumerate(vocab)}
    unknown = sorted(set(prompt) - set(lookup))
    if unknown or not prompt:
        raise ValueError(f"prompt must be non-empty and use only corpus characters; unknown: {unknown}")
    ids = generate(T, model, cfg, [lookup[ch] for ch in prompt], length, seed, temperature, top_k, device)
    return "".join(vocab[i] for i in ids[len(prompt):])


def main() -> None:
    parser = common.base_arg_parser(__doc__.splitlines()[0], PROFILES)
    parser.add_argument("--sample-from", default=None, help="skip training; sample from this checkpoint")
    parser.add_argument("--length", type=int, default=300, help="characters to sample (default 300)")
    parser.add_argument("--prompt", default="\n", help="text to continue (default a newline)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    args = parser.parse_args()
    T = common.load_framework(args.framework)
    try:
        if args.sample_from:
            print(sample_text(T, Path(args.sample_from), args.length, args.prompt, args.seed, args.temperature,
                              args.top_k, args.device))
            return
        device = common.setup_distributed(T, args.device)
        common.run_from_args(T, prepare(T, args.profile, args.seed, device, batch=args.batch), args)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"minigpt: {exc}") from exc


if __name__ == "__main__":
    main()
