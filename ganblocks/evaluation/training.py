"""Training the evaluator: class head on class-faithful renders, attribute heads on free renders; the cache.

`train_evaluator` is the recipe (see its docstring for why the two kinds of renders), `cached_evaluator` the
cache around it, keyed by the recipe (`cache_dir("evaluators", key)`).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ganblocks.evaluation.evaluator import (CROP_FRACTION, EVALUATOR_VERSION, AttributeInfo, Evaluator, describe,
                                            EvaluatorNet, EvaluatorOutput, attribute_infos, center_crop,
                                            to_unit_range)
from ganblocks.io import cache_dir, stable_hash


def _heldout_split(class_index: Tensor, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Indices of a per-class stratified split: (train, held-out)."""
    train, held = [], []
    for c in class_index.unique():
        idx = (class_index == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_held = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return torch.cat(train), torch.cat(held)


def _augment(x: Tensor, image_size: int, generator: torch.Generator, low_res_fraction: float = 0.0,
             low_res_size: int = 64) -> Tensor:
    """Random crop of CROP_FRACTION of the side, resize to image_size, random horizontal flip (per batch); then
    a random `low_res_fraction` of the images go down to `low_res_size` and back up, as a Stage-I image does
    on its way into the network (so the class and coarse heads read 64 px images and the fine heads learn
    that a pattern 64 px cannot show is unknown, not absent)."""
    side = x.shape[-1]
    crop = max(1, round(side * CROP_FRACTION))
    top, left = torch.randint(0, side - crop + 1, (2,), generator=generator).tolist()
    x = x[..., top : top + crop, left : left + crop]
    if crop != image_size:
        x = F.interpolate(x, size=(image_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    low = torch.rand(x.shape[0], generator=generator) < low_res_fraction
    if low.any() and low_res_size < image_size:
        small = F.interpolate(x[low], size=(low_res_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        x = x.clone()
        x[low] = F.interpolate(small, size=(image_size,) * 2, mode="bilinear", align_corners=False)
    return x


@torch.no_grad()
def _predict(net: EvaluatorNet, images: Tensor) -> EvaluatorOutput:
    """Outputs of centre-cropped load-size renders, in batches of 256 (net in eval mode)."""
    net.eval()
    x = center_crop(images, max(1, round(images.shape[-1] * CROP_FRACTION)))
    outs = [net(x[i : i + 256]) for i in range(0, len(x), 256)]
    return EvaluatorOutput(torch.cat([o.features for o in outs]), torch.cat([o.class_logits for o in outs]),
                           [torch.cat([o.attribute_logits[a] for o in outs]) for a in range(len(outs[0].attribute_logits))])


def attribute_accuracy(net: EvaluatorNet, images: Tensor, attributes: Tensor, infos: Sequence[AttributeInfo]) -> dict:
    """Per-attribute accuracy of the judge on load-size renders, and the mean over all, coarse and fine ones."""
    out = _predict(net, images)
    per_attr = {info.name: float((out.attribute_logits[a].argmax(1) == attributes[:, a]).float().mean())
                for a, info in enumerate(infos)}
    coarse = [per_attr[i.name] for i in infos if not i.fine]
    fine = [per_attr[i.name] for i in infos if i.fine]
    return {
        "attributes": per_attr,
        "attributes_mean": sum(per_attr.values()) / max(1, len(per_attr)),
        "coarse": sum(coarse) / len(coarse) if coarse else None,
        "fine": sum(fine) / len(fine) if fine else None,
    }


def measure_accuracy(net: EvaluatorNet, images: Tensor, class_index: Tensor, free_images: Tensor,
                     free_attributes: Tensor, infos: Sequence[AttributeInfo]) -> dict:
    """Held-out accuracy: the class head on class-faithful renders, each attribute head on renders whose
    attributes were drawn independently of the class (so a head that guesses from the class scores chance)."""
    class_pred = _predict(net, images).class_logits.argmax(1)
    return {"class": float((class_pred == class_index).float().mean()),
            **attribute_accuracy(net, free_images, free_attributes, infos)}


def train_evaluator(
    images: Tensor,
    class_ids: Tensor,
    attributes: Tensor,
    attribute_spec: Iterable[Any],
    *,
    free_images: Tensor,
    free_attributes: Tensor,
    image_size: int = 64,
    width: int = 8,
    feature_dim: int = 128,
    epochs: int = 12,
    batch_size: int = 32,
    lr: float = 2e-3,
    heldout_fraction: float = 0.2,
    low_res_fraction: float = 0.25,
    seed: int = 0,
    key: str | None = None,
    extra_meta: dict | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> Evaluator:
    """Train the evaluator on renders and measure it on held-out renders of the same two kinds.

    Two kinds of renders, one network. Class-faithful renders (each class's own attributes) train the class
    head: it is the IS classifier, and a class *is* its attributes. Free renders (every attribute drawn per
    image, independently of the class) train the attribute heads, and only they do: on class-faithful renders
    an attribute head could read the class and look up its attributes, which is what the judge must not do
    (flip one fine attribute of a render and such a judge keeps its reading). Each step takes one batch of
    each kind through the shared trunk; the loss is the class loss on the first plus the attribute losses on
    the second. Both kinds are augmented alike (crop, flip, a `low_res_fraction` through 64 px).

    On CPU with a fixed seed the run is deterministic (seeded data order, crops and initialisation).

    Args:
        images:          (N, 3, L, L) uint8 class-faithful renders (at the load size; cropped like the GAN's).
        class_ids:       (N,) int64 dataset class ids (the test classes); mapped to class-head outputs.
        attributes:      (N, A) int64 their attribute values (recorded, not trained on).
        attribute_spec:  per attribute (name, values, fine), see `attribute_infos`.
        free_images:     (M, 3, L, L) uint8 renders with attributes drawn independently of the class.
        free_attributes: (M, A) int64 their attribute values.
        image_size:      the resolution the network sees (power of two); 128+ to judge fine attributes.
        heldout_fraction: fraction of each kind kept out of training to measure accuracy.
        key:             cache key stored in the meta (default: a hash of the inputs' shapes and settings).
        device:          where to train (the images stay on CPU; batches move).
    Returns:
        An `Evaluator` in eval mode on CPU, with `meta["accuracy"]` measured on the held-out renders.
    Raises:
        ValueError: images not uint8 (N, 3, L, L), or label shapes that do not match the images and spec.
    """
    infos = attribute_infos(attribute_spec)
    for what, imgs, attrs in (("images", images, attributes), ("free_images", free_images, free_attributes)):
        if imgs.dtype != torch.uint8 or imgs.dim() != 4 or imgs.shape[1] != 3:
            raise ValueError(f"{what} must be uint8 (N, 3, L, L), got {imgs.dtype} {tuple(imgs.shape)}")
        if attrs.shape != (len(imgs), len(infos)):
            raise ValueError(
                f"attributes of {what} have shape {tuple(attrs.shape)}; expected ({len(imgs)}, {len(infos)}) "
                f"for {len(imgs)} images and {len(infos)} attributes in attribute_spec"
            )
    classes = sorted(int(c) for c in class_ids.unique())
    lookup = {c: i for i, c in enumerate(classes)}
    class_index = torch.tensor([lookup[int(c)] for c in class_ids], dtype=torch.long)
    free_attributes = free_attributes.long()

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    train_idx, held_idx = _heldout_split(class_index, heldout_fraction, gen)
    free_order = torch.randperm(len(free_images), generator=gen)
    n_free_held = round(len(free_images) * heldout_fraction)
    free_train, free_held = free_order[n_free_held:], free_order[:n_free_held]
    if len(free_train) < batch_size or len(train_idx) < 1:
        raise ValueError(f"too few renders to train on: {len(train_idx)} class-faithful and {len(free_train)} "
                         f"free after holding out {heldout_fraction:.0%} (batch_size={batch_size})")
    net = EvaluatorNet(len(classes), [i.num_values for i in infos], image_size, width, feature_dim).to(device)
    class_target, attr_target = class_index.to(device), free_attributes.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = max(1, len(free_train) // batch_size)  # an epoch is one pass over the free renders
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)

    def batches(pool: Tensor) -> Iterator[Tensor]:  # endless, reshuffled per pass
        while True:
            order = pool[torch.randperm(len(pool), generator=gen)]
            yield from (order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size))

    from ganblocks.progress import progress_bar

    bar = progress_bar(total=epochs * steps_per_epoch, desc="training evaluator", leave=False, disable=not progress)
    class_batches, free_batches = batches(train_idx), batches(free_train)
    for step in range(epochs * steps_per_epoch):
        net.train()
        idx, fidx = next(class_batches), next(free_batches)
        x = torch.cat([to_unit_range(images[idx]), to_unit_range(free_images[fidx])])
        out = net(_augment(x, image_size, gen, low_res_fraction).to(device))
        loss = F.cross_entropy(out.class_logits[: len(idx)], class_target[idx.to(device)])
        for a, logits in enumerate(out.attribute_logits):
            loss = loss + F.cross_entropy(logits[len(idx) :], attr_target[fidx.to(device), a])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.update(1)
        if step % 20 == 0:  # reading the loss syncs with the device: not every step
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()

    net = net.cpu()
    accuracy = measure_accuracy(net, images[held_idx], class_index[held_idx], free_images[free_held],
                                free_attributes[free_held], infos)
    settings = dict(image_size=image_size, width=width, feature_dim=feature_dim, epochs=epochs,
                    batch_size=batch_size, lr=lr, heldout_fraction=heldout_fraction,
                    low_res_fraction=low_res_fraction, seed=seed)
    meta = {
        "key": key or stable_hash([EVALUATOR_VERSION, settings, classes, [i.__dict__ for i in infos],
                                   list(images.shape), list(free_images.shape)]),
        "version": EVALUATOR_VERSION,
        **settings,
        "class_ids": classes,
        "attributes": [dict(name=i.name, num_values=i.num_values, fine=i.fine) for i in infos],
        "accuracy": accuracy,
        "n_train": int(len(train_idx)),
        "n_heldout": int(len(held_idx)),
        "n_free_train": int(len(free_train)),
        "n_free_heldout": int(len(free_held)),
        **(extra_meta or {}),
    }
    return Evaluator(net.eval(), meta)


def cached_evaluator(key_parts: dict, make_training_data, progress: bool = True, device: str | torch.device = "cpu",
                     **train_kwargs) -> Evaluator:
    """The evaluator cached under `cache_dir("evaluators", stable_hash(key_parts, settings))`, trained on a miss.

    Args:
        key_parts:          what identifies the training data (renderer, classes, render seed and counts).
        make_training_data: () -> dict of `train_evaluator`'s data arguments (images, class_ids, attributes,
                            attribute_spec, free_images, free_attributes), called only on a miss.
        train_kwargs:       passed to `train_evaluator`; part of the cache key (`device` is not).
    """
    key = stable_hash([EVALUATOR_VERSION, key_parts, train_kwargs])
    folder = cache_dir("evaluators", key)
    if (folder / "evaluator.pt").exists():
        return Evaluator.load(folder)
    from ganblocks.progress import long_step

    with long_step("rendering the evaluator's training images (once; cached)", "rendered the evaluator's images",
                   progress=progress):
        data = make_training_data()
    with long_step("training the evaluator (once; cached)", "trained the evaluator", progress=False) as step:
        evaluator = train_evaluator(**data, key=key, extra_meta={"trained_on": key_parts},
                                    progress=progress, device=device, **train_kwargs)
        evaluator.save(folder)
        step.result = f"{folder} ({describe(evaluator)})"
    return evaluator
