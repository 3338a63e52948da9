"""Weight initialisation of the official StackGAN code (hanzhanggit/StackGAN-Pytorch, miscc/utils.py).

Conv and linear weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02), every bias 0. StackGAN-v2's
orthogonal variant is `init_orthogonal_`; `initialise_(model, name, where)` picks one by name.
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


def init_orthogonal_(model: nn.Module) -> nn.Module:
    """StackGAN-v2's initialisation (code/trainer.py `weights_init`), in place; returns `model`.

    Conv and linear weights orthogonal with gain 1 (each weight viewed as (out, in * k * k)), linear biases
    0, BatchNorm weights ~ N(1, 0.02) and biases 0. Conv biases keep PyTorch's default, as in that code.
    """
    for module in model.modules():
        if isinstance(module, _CONV_OR_LINEAR):
            nn.init.orthogonal_(module.weight, 1.0)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, _BATCHNORM) and module.affine:
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
    return model


INITS = {"normal": init_weights_, "orthogonal": init_orthogonal_}


def initialise_(model: nn.Module, init: str, where: str) -> nn.Module:
    """Apply the initialisation named `init` ("normal": StackGAN-v1, "orthogonal": StackGAN-v2) to `model`."""
    try:
        return INITS[init](model)
    except KeyError:
        raise ValueError(f"{where}: init={init!r}; expected one of {sorted(INITS)}") from None
