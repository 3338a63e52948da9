"""Weight initialisation of the official StackGAN code (hanzhanggit/StackGAN-Pytorch, miscc/utils.py).

Conv and linear weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02), every bias 0.
"""

from __future__ import annotations

from torch import nn

_CONV_OR_LINEAR = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)


def init_module_(module: nn.Module, std: float = 0.02) -> None:
    """Initialise one module's own parameters as the official code does (no recursion)."""
    if isinstance(module, _CONV_OR_LINEAR):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, _BATCHNORM) and module.affine:
        nn.init.normal_(module.weight, 1.0, std)
        nn.init.zeros_(module.bias)


def init_weights_(model: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialise every conv, linear and BatchNorm layer in `model` in place; returns `model`."""
    for module in model.modules():
        init_module_(module, std)
    return model
