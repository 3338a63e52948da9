"""Where a process sits under torchrun, and the DistributedDataParallel wrapper of a stage's modules.

    dist = Distributed.from_env()          # rank 0 of 1 unless launched by torchrun (WORLD_SIZE > 1)
    G_step = wrap_ddp(G, device, dist)     # DDP without buffer broadcast; the module itself for one process
    states = gather_rng_states(dist)       # every rank's RNG state (a collective), None for one process
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
from torch import nn

from ganblocks.training.state import rng_state


@dataclass
class Distributed:
    """Where this process sits: rank 0 of 1 unless launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Distributed":
        """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK; joins the process group (nccl on CUDA, gloo on CPU)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def wrap_ddp(module: nn.Module, device: torch.device, dist: Distributed) -> nn.Module:
    """`module` under DistributedDataParallel when there are several processes, else `module` itself.

    BatchNorm statistics stay per rank (no buffer broadcast before each of a step's several forwards);
    newer torch spells it forward_sync_buffers, older broadcast_buffers.
    """
    if dist.world_size <= 1:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
               else {"broadcast_buffers": False})
    return DDP(module, device_ids=ids, **no_sync)


def gather_rng_states(dist: Distributed) -> list[dict] | None:
    """Every rank's `rng_state()`, indexed by rank (None for a single process); all ranks must call it."""
    if dist.world_size <= 1:
        return None
    import torch.distributed

    states: list = [None] * dist.world_size
    torch.distributed.all_gather_object(states, rng_state())
    return states
