"""The schema of a training config: every key of experiments/conf, its type and what values it accepts.

One dataclass per section of config.yaml (the values and their comments stay in the YAML files); each field
is typed, and its `metadata` says what is accepted beyond the type: a registry kind whose names it takes,
a range, a list of choices or a pattern. `experiments.config.validate` walks this schema against a composed
config, so a key is added in two places only: config.yaml (its default and comment) and here (its type).

    int | None          an integer or null         float  a finite number (nan and inf are refused)
    low=/high=          inclusive bounds            above=/below=   exclusive bounds
    registry="upsample" a registered name of that kind   choices=(...)   one of these values
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def accepts(*, registry: str | None = None, low: float | None = None, high: float | None = None,
            above: float | None = None, below: float | None = None, choices: tuple | None = None,
            pattern: str | None = None, accepted: str | None = None, length: int | None = None,
            why: str | None = None) -> Any:
    """A dataclass field (no default: config.yaml holds the values) with what the key accepts as metadata.

    `accepted` spells a `pattern` for people; `length` fixes a list's length; `why` is added to the
    message when a value is out of range (e.g. why a batch needs two samples).
    """
    meta = {k: v for k, v in dict(registry=registry, low=low, high=high, above=above, below=below, choices=choices,
                                  pattern=pattern, accepted=accepted, length=length, why=why).items() if v is not None}
    return field(metadata=meta)


@dataclass
class ModelConfig:
    preset: str = accepts(choices=("paper", "official", "paper_v2", "official_v2", "paper_attn", "official_attn",
                                   "official_attn_coco"))  # v2: the StackGAN++ tree; attn: AttnGAN (tree pipeline)
    upsample: str = accepts(registry="upsample")
    residual: str = accepts(registry="residual")
    conditioning: str = accepts(registry="conditioning")
    d_head: str = accepts(registry="d_head")
    stage2_d_head: str = accepts(registry="d_head")
    num_residual: int | None = accepts(low=0, high=64)
    text_twice: bool = accepts()
    gf_dim: int | None = accepts(low=1, high=4096)
    df_dim: int | None = accepts(low=1, high=4096)
    condition_dim: int | None = accepts(low=1, high=4096)
    noise_dim: int | None = accepts(low=1, high=4096)
    stage1_size: int = accepts(low=16, high=1024)
    stage2_size: int = accepts(low=16, high=1024)
    tree_model: str = accepts(registry="generator")  # the tree pipeline's generator and discriminator


@dataclass
class DataConfig:
    name: str = accepts(registry="dataset")
    size: str = accepts(choices=("tiny", "small", "default"))  # ganblocks.data.synthbirds.PRESETS
    root: str | None = accepts()
    text_encoder: str = accepts(registry="text_encoder")
    text_encoder_options: dict[str, Any] = accepts()  # keywords of the encoder (checked against it in config.py)
    wrong: str = accepts(choices=("class", "shift"))


@dataclass
class LossConfig:
    name: str = accepts(registry="loss")
    kl_weight: float = accepts(low=0)
    text_transform: str = accepts(registry="text_transform")
    gan_int_beta: float = accepts(low=0, high=1)
    regularisers: list[str] = accepts(registry="regulariser")
    regulariser_options: dict[str, dict[str, Any]] = accepts(registry="regulariser")  # keywords per name


@dataclass
class TrainConfig:
    batch_size: int = accepts(low=2, why="BatchNorm needs at least 2 samples per batch and process")
    lr: float = accepts(above=0)
    lr_d: float | None = accepts(above=0)
    betas: list[float] = accepts(low=0, below=1, length=2)
    epochs: int = accepts(low=1)
    max_steps: int | None = accepts(low=1)
    step_factor: float = accepts(above=0)
    lr_halve_every: int | None = accepts(low=1)
    ema_decay: float | None = accepts(above=0, high=1)
    checkpoint_every: int = accepts(low=1)
    log_every: int = accepts(low=1)
    sample_every: int = accepts(low=1)
    n_samples: int = accepts(low=1, high=64)
    amp: str = accepts(choices=("auto", "bf16", "fp32"))
    channels_last: bool | str = accepts(choices=("auto", True, False))
    cuda_graph: bool | str = accepts(choices=("auto", True, False))
    compile: bool = accepts()
    progress: bool = accepts()
    tensorboard: bool = accepts()
    cpu_threads: int | None = accepts(low=1, high=1024)


@dataclass
class StageConfig:
    name: str = accepts()
    generator: str = accepts(registry="generator")
    discriminator: str = accepts(registry="discriminator")
    d_head: str = accepts(registry="d_head")
    imsize: int = accepts(low=16, high=1024)
    fixed: str | None = accepts()


@dataclass
class PipelineConfig:
    name: str = accepts()
    stages: list[StageConfig] = accepts()


@dataclass
class MetricsConfig:
    names: list[str] = accepts(registry="metric")
    n_samples: int = accepts(low=1)
    n_per_caption: int = accepts(low=1)
    n_real: int | None = accepts(low=1)
    real_split: str = accepts(choices=("train", "test"))
    image_size: int | None = accepts(low=16, high=1024)
    seed: int = accepts(low=0)
    batch_size: int = accepts(low=1)
    inception_weights: str | None = accepts()
    is_classifier: str | None = accepts()
    require_is_classifier: bool = accepts()
    real_reference: bool = accepts()
    evaluator_size: int = accepts(low=16, high=1024)
    evaluator_renders_per_class: int = accepts(low=1)
    evaluator_free_renders: int = accepts(low=1)
    evaluator_epochs: int = accepts(low=1)
    evaluator_width: int = accepts(low=1)
    min_class_accuracy: float = accepts(low=0, high=1)
    min_attribute_accuracy: float = accepts(low=0, high=1)
    options: dict[str, dict[str, Any]] = accepts(registry="metric")  # keyword arguments per metric name
    figures: bool = accepts()
    figure_captions: int = accepts(low=1)
    rank_captions: int = accepts(low=1)
    rank_per_caption: int = accepts(low=1)
    progress: bool = accepts()


@dataclass
class RunConfig:
    """A whole training run: experiments/conf/config.yaml after composition."""

    seed: int = accepts(low=0)
    device: str = accepts(pattern=r"auto|cpu|cuda(:\d+)?", accepted="auto, cpu, cuda or cuda:N")
    run_dir: str = accepts()
    profile_name: str = accepts(choices=("smoke", "cpu", "small", "paper"))
    model: ModelConfig = accepts()
    data: DataConfig = accepts()
    loss: LossConfig = accepts()
    train: TrainConfig = accepts()
    pipeline: PipelineConfig = accepts()
    metrics: MetricsConfig = accepts()
