"""ganblocks: interchangeable, registered blocks of the StackGAN family, and the models built from them.

Importing the package registers every component (see `ganblocks.registry`); `python -m ganblocks list`
prints them.
"""

from ganblocks.registry import REGISTRIES, build, names, register, registry  # noqa: F401

# Each subpackage's __init__ imports its modules, which register their components.
from ganblocks import blocks, models, losses, data, text, metrics, compat  # noqa: E402,F401

__version__ = "0.1.0"
