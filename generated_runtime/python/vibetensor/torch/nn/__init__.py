"""vibetensor.torch.nn with PyTorch's API.

`functional` (stateless ops: activations, softmax, norms, losses, linear, embedding, attention) is part of the core.
Module, Parameter, the layers, `init` and `utils` belong to the autograd subsystem and are imported when that part of
the package is installed (see vibetensor.torch._subsystems: a present part that fails to import is an error).
"""
import importlib.util as _ilu

from . import functional  # noqa: F401

if _ilu.find_spec(__name__ + ".module") is not None:
    from .parameter import Parameter, Buffer  # noqa: F401
    from .module import Module  # noqa: F401
    from .modules import (  # noqa: F401
        Identity, Linear, Embedding, LayerNorm, RMSNorm, Dropout, GELU, ReLU, SiLU, Tanh, Sigmoid, Softmax,
        LogSoftmax, Flatten, CrossEntropyLoss, MSELoss, Sequential, ModuleList, ModuleDict, ParameterList,
    )
    from . import init, utils  # noqa: F401
