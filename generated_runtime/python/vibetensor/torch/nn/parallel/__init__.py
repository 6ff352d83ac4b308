"""vibetensor.torch.nn.parallel: DistributedDataParallel (one process per device, see vibetensor.torch.distributed)."""
from .distributed import DistributedDataParallel  # noqa: F401

__all__ = ["DistributedDataParallel"]
