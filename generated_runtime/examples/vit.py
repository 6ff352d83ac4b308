"""Vision Transformer on 32x32 colour images (CIFAR-10, or a procedural stand-in for offline runs).

Patch embedding is reshape/permute + linear (no convolution); classification by mean-pooling the patch tokens.
Paper profile: patch 4, dim 256, depth 6, 8 heads, MLP ratio 4, AdamW.

Data:
- ``load_cifar10_batches``: the CIFAR-10 *binary* format, files ``data_batch_1.bin`` ... ``test_batch.bin``, each
  record 1 label byte (0-9) followed by 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major 32x32).
- ``procedural_images``: ten classes of learnable structure (a class-specific shape in a class-specific colour on
  a random background, plus noise), generated with numpy from the seed. The default for offline runs.
Images reach the model as float32 (B, 3, 32, 32), scaled to [0, 1] and centred by 0.5.

    python generated_runtime/examples/vit.py --framework torch --profile ci --steps 20 [--cifar-dir DIR]
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

IMAGE_SIZE = 32
CHANNELS = 3
NUM_CLASSES = 10
CIFAR_RECORD_BYTES = 1 + CHANNELS * IMAGE_SIZE * IMAGE_SIZE  # 3073


@dataclass(frozen=True)
class Config:
    patch: int
    dim: int
    depth: int
    heads: int
    batch: int
    lr: float
    weight_decay: float = 0.05
    mlp_ratio: int = 4


PROFILES = {
    "ci": Config(patch=8, dim=32, depth=1, heads=2, batch=8, lr=1e-3),
    "small": Config(patch=4, dim=128, depth=4, heads=4, batch=64, lr=1e-3),
    "paper": Config(patch=4, dim=256, depth=6, heads=8, batch=128, lr=1e-3),
}


def build(T: Any, cfg: Config) -> Any:
    nn, F = T.nn, T.nn.functional
    grid = IMAGE_SIZE // cfg.patch
    num_patches, patch_dim = grid * grid, CHANNELS * cfg.patch * cfg.patch

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query = nn.Linear(cfg.dim, cfg.dim)
            self.key = nn.Linear(cfg.dim, cfg.dim)
            self.value = nn.Linear(cfg.dim, cfg.dim)
            self.proj = nn.Linear(cfg.dim, cfg.dim)

        def forward(self, x):  # x: (B, N, C)
            B, N, C = x.shape
            H, D = cfg.heads, C // cfg.heads
            q = self.query(x).reshape(B, N, H, D).transpose(1, 2)  # (B, H, N, D)
            k = self.key(x).reshape(B, N, H, D).transpose(1, 2)  # (B, H, N, D)
            v = self.value(x).reshape(B, N, H, D).transpose(1, 2)  # (B, H, N, D)
            att = F.softmax(T.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(D)), dim=-1)  # (B, H, N, N)
            y = T.matmul(att, v).transpose(1, 2).reshape(B, N, C)  # (B, N, C)
            return self.proj(y)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = nn.LayerNorm(cfg.dim)
            self.attn = SelfAttention()
            self.norm2 = nn.LayerNorm(cfg.dim)
            self.mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.mlp_ratio * cfg.dim), nn.GELU(),
                                     nn.Linear(cfg.mlp_ratio * cfg.dim, cfg.dim))

        def forward(self, x):  # x: (B, N, C)
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class VisionTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch_embedding = nn.Linear(patch_dim, cfg.dim)
            self.position_embedding = nn.Parameter(T.zeros(1, num_patches, cfg.dim))
            self.blocks = nn.ModuleList([Block() for _ in range(cfg.depth)])
            self.norm = nn.LayerNorm(cfg.dim)
            self.head = nn.Linear(cfg.dim, NUM_CLASSES)

        def forward(self, images):  # images: (B, 3, S, S) float32
            B, P = images.shape[0], cfg.patch
            x = images.reshape(B, CHANNELS, grid, P, grid, P)  # (B, 3, g, P, g, P)
            x = x.permute(0, 2, 4, 3, 5, 1).reshape(B, num_patches, patch_dim)  # (B, N, P*P*3)
            x = self.patch_embedding(x) + self.position_embedding  # (B, N, C)
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x).mean(dim=1))  # (B, classes)

    return VisionTransformer()


# ---------------------------------------------------------------------------------------------------------------
# Data


def load_cifar10_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 binary batch files: images uint8 (N, 3, 32, 32), labels int64 (N,)."""
    chunks = []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % CIFAR_RECORD_BYTES:
            raise ValueError(f"{path}: {raw.size} bytes is not a whole number of CIFAR-10 records "
                             f"({CIFAR_RECORD_BYTES} bytes each)")
        chunks.append(raw.reshape(-1, CIFAR_RECORD_BYTES))
    if not chunks:
        raise ValueError("no CIFAR-10 batch files given")
    records = np.concatenate(chunks)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= NUM_CLASSES:
        raise ValueError(f"label {int(labels.max())} out of range 0-9: not a CIFAR-10 binary file")
    images = records[:, 1:].reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    return images, labels


def cifar10_train_files(directory: Path) -> list[Path]:
    files = sorted(Path(directory).glob("data_batch_*.bin"))
    if not files:
        raise ValueError(f"{directory}: no data_batch_*.bin files (the CIFAR-10 binary version)")
    return files


def procedural_images(seed: int, step: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch of class-structured images: uint8 (B, 3, 32, 32) and labels int64 (B,).

    Class c draws shape c % 5 (square, disc, horizontal bar, vertical bar, diagonal) in a warm colour (c < 5) or a
    cool one (c >= 5): the pair (shape, colour family) is the class; position, size, tint, background and noise vary.
    """
    rng = common.numpy_rng(seed, 2, step)
    labels = rng.integers(0, NUM_CLASSES, size=batch, dtype=np.int64)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    warm, cool = np.array([220, 90, 40]), np.array([40, 110, 220])
    images = np.empty((batch, CHANNELS, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for i, label in enumerate(labels):
        shape, colour = label % 5, (warm if label < 5 else cool) + rng.integers(-30, 31, size=3)
        cy, cx = rng.integers(10, 22, size=2)
        r = rng.integers(5, 9)
        if shape == 0:
            mask = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        elif shape == 1:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        elif shape == 2:
            mask = abs(yy - cy) <= 2
        elif shape == 3:
            mask = abs(xx - cx) <= 2
        else:
            mask = abs((yy - cy) - (xx - cx)) <= 2
        background = rng.integers(0, 120, size=3)
        image = np.where(mask[None], colour[:, None, None], background[:, None, None]).astype(np.float32)
        images[i] = image + rng.normal(0.0, 20.0, size=image.shape)
    return np.clip(images, 0, 255).astype(np.uint8), labels


def normalise(images_uint8: np.ndarray) -> np.ndarray:
    return (images_uint8.astype(np.float32) / 255.0 - 0.5).astype(np.float32)


def prepare(T: Any, profile: str, seed: int, device: str = "cpu", cifar_dir: str | None = None,
            batch: int | None = None) -> common.TrainingJob:
    cfg = common.with_batch(PROFILES[profile], batch)
    model = build(T, cfg)
    common.init_parameters(T, model, seed)
    if device != "cpu":
        model = model.to(device)
    optimizer = T.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    dataset = load_cifar10_batches(cifar10_train_files(Path(cifar_dir))) if cifar_dir else None

    def batch(step):
        if dataset is None:
            images, labels = procedural_images(seed, step, cfg.batch)
        else:
            index = common.numpy_rng(seed, 3, step).integers(0, len(dataset[1]), size=cfg.batch)
            images, labels = dataset[0][index], dataset[1][index]
        images, labels = common.shard_rows(T, images, labels)
        return common.to_device(T, normalise(images), device), common.to_device(T, labels, device)

    def loss(batch):
        images, labels = batch
        return T.nn.functional.cross_entropy(model(images), labels)

    return common.TrainingJob(model, optimizer, batch, loss, items_per_step=cfg.batch, item_unit="img",
                              workload="vit", config=cfg, device=device)


def main() -> None:
    parser = common.base_arg_parser(__doc__.splitlines()[0], PROFILES)
    parser.add_argument("--cifar-dir", default=None,
                        help="folder with CIFAR-10 binary batches (data_batch_*.bin); default: procedural images")
    args = parser.parse_args()
    T = common.load_framework(args.framework)
    try:
        device = common.setup_distributed(T, args.device)
        common.run_from_args(T, prepare(T, args.profile, args.seed, device, args.cifar_dir, batch=args.batch), args)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"vit: {exc}") from exc


if __name__ == "__main__":
    main()
