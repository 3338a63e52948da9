"""Pretrain the DAMSM text and image encoders: `python -m ganblocks.text.pretrain_damsm --out DIR [--dataset NAME]`.

As taoxugit/AttnGAN code/pretrain_DAMSM.py: the bi-LSTM (`damsm` "rnn") and an image encoder ("small_cnn" by
default, "inception_v3" with --inception-weights PATH) trained together on the train split with the DAMSM loss
(word + sentence terms, both directions; same-class pairs masked), Adam (betas 0.5, 0.999), the RNN's
gradient norm clipped at 0.25, the learning rate times 0.98 each epoch down to lr / 10. After every epoch
DIR/last.pt (models, optimizer, loader and RNG state; exact resume: a second call continues where the first
stopped) and one line of DIR/log.jsonl; at the end DIR/final.pt and the test-split retrieval accuracy:
for each test image, its caption ranked among 1 + 99 captions of other images by sentence cosine (top-1
share, chance 1 %), and the mean DAMSM loss on test batches.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ganblocks.io import append_jsonl, atomic_torch_save, load_torch_file
from ganblocks.losses.damsm import DAMSMLoss, sentence_scores
from ganblocks.progress import progress_bar
from ganblocks.registry import build
from ganblocks.text.damsm import MAX_WORDS
from ganblocks.text.rnn import Vocabulary


def _tokens(dataset, vocab: Vocabulary) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, n_captions, T) word ids and (N, n_captions) lengths of every caption of `dataset`."""
    flat = [c for caps in dataset.captions for c in caps]
    ids, lengths = vocab.encode(flat, max_len=MAX_WORDS)
    n_caps = len(dataset.captions[0])
    return ids.view(len(dataset), n_caps, -1), lengths.view(len(dataset), n_caps)


def _image_encoder(name: str, dim: int, imsize: int, width: int, inception_weights: str | None):
    if name == "inception_v3":
        return build("damsm", name, dim=dim, inception_weights=inception_weights)
    return build("damsm", name, dim=dim, width=width, image_size=imsize)


@torch.no_grad()
def retrieval_accuracy(text, image, dataset, ids, lengths, device, n_candidates: int = 100, seed: int = 0,
                       batch_size: int = 64) -> dict[str, float]:
    """Top-1 share of test images whose own (first) caption beats n_candidates - 1 captions of other images
    by sentence cosine; centre crops, no flips. Returns {"top1", "chance", "n"}."""
    text.eval(), image.eval()
    from ganblocks.data.batching import BatchLoader

    loader = BatchLoader(dataset, min(batch_size, len(dataset)), device, seed=seed, wrong="shift", drop_last=False,
                         crop=False, flip=False)
    codes = torch.zeros(len(dataset), image.dim)
    for batch in loader:
        codes[batch.indices.cpu()] = image(batch.images)[1].float().cpu()
    sentences = text(ids[:, 0].to(device), lengths[:, 0].to(device))[1].float().cpu()
    g = torch.Generator().manual_seed(seed)
    hits, n = 0, len(dataset)
    k = min(n_candidates, n) - 1
    for i in range(n):
        others = torch.randperm(n - 1, generator=g)[:k]
        others = others + (others >= i).long()  # never the image's own caption
        scores = sentence_scores(codes[i : i + 1], sentences[torch.cat([torch.tensor([i]), others])])[0]
        hits += int(scores.argmax().item() == 0)
    return {"top1": hits / n, "chance": 1.0 / (k + 1), "n": n}


def pretrain_damsm(out_dir: str | os.PathLike, dataset: str = "synthbirds", root: str | os.PathLike | None = None,
                   dataset_kwargs: dict | None = None, image_encoder: str = "small_cnn",
                   inception_weights: str | None = None, dim: int = 256, word_dim: int = 300, width: int = 32,
                   imsize: int = 64, epochs: int = 20, batch_size: int = 48, lr: float = 2e-3,
                   gamma1: float = 4.0, gamma2: float = 5.0, gamma3: float = 10.0, grad_clip: float = 0.25,
                   seed: int = 0, device: str = "cpu", stop_after_epochs: int | None = None,
                   progress: bool = True, log: Any = print) -> dict:
    """Train (or resume) the DAMSM encoders into `out_dir`; returns the result dict also written to
    out_dir/result.json (when finished). `stop_after_epochs` stops after that many epochs of this call.

    Raises ValueError when `out_dir` holds a run with other settings (they are compared before training).
    """
    from ganblocks.data.batching import BatchLoader
    from ganblocks.data.dataset import build_dataset

    out, root = Path(out_dir), None if root is None else str(root)
    config = {"dataset": dataset, "root": root, "dataset_kwargs": dataset_kwargs or {}, "image_encoder": image_encoder,
              "dim": dim, "word_dim": word_dim, "width": width, "imsize": imsize, "epochs": epochs,
              "batch_size": batch_size, "lr": lr, "gammas": [gamma1, gamma2, gamma3], "grad_clip": grad_clip,
              "seed": seed}
    last = out / "last.pt"
    state = load_torch_file(last) if last.is_file() else None
    if state is not None and state["config"] != config:
        changed = sorted(k for k in config if state["config"].get(k) != config[k])
        raise ValueError(f"pretrain_damsm: {out} holds a run with other settings ({', '.join(changed)}); "
                         "use another --out or the same settings")
    torch.manual_seed(seed)
    train = build_dataset(dataset, "train", imsize, None, root=root, **(dataset_kwargs or {}))
    vocab = Vocabulary(state["vocab"]) if state else Vocabulary.build([c for caps in train.captions for c in caps])
    ids, lengths = _tokens(train, vocab)
    text = build("damsm", "rnn", vocab_size=len(vocab.words), word_dim=word_dim, dim=dim).to(device)
    image = _image_encoder(image_encoder, dim, imsize, width, inception_weights).to(device)
    params = list(text.parameters()) + [p for p in image.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
    loader = BatchLoader(train, min(batch_size, len(train)), device, seed=seed, wrong="shift")
    loss_fn, history, epoch = DAMSMLoss(gamma1, gamma2, gamma3), [], 0
    if state:
        text.load_state_dict(state["text"]), image.load_state_dict(state["image"]), opt.load_state_dict(state["opt"])
        loader.load_state_dict(state["loader"]), torch.set_rng_state(state["rng"])
        history, epoch = state["history"], state["epoch"]
    out.mkdir(parents=True, exist_ok=True)
    run_epochs = epochs - epoch if stop_after_epochs is None else min(epochs - epoch, stop_after_epochs)
    bar = progress_bar(total=run_epochs * len(loader), desc="pretraining DAMSM", unit="batch", disable=not progress)
    for _ in range(run_epochs):
        text.train(), image.train()
        for group in opt.param_groups:
            group["lr"] = max(lr * 0.98**epoch, lr / 10)
        start, sums, steps = time.perf_counter(), {}, 0
        for batch in loader:
            idx, cap = batch.indices.cpu(), batch.caption_ids.cpu()
            words, sentence = text(ids[idx, cap].to(device), lengths[idx, cap].to(device))
            regions, code = image(batch.images)
            loss, stats = loss_fn(regions, code, words, sentence, lengths[idx, cap].to(device), batch.class_ids)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(text.parameters(), grad_clip)
            opt.step()
            steps += 1
            for k in ("w_loss0", "w_loss1", "s_loss0", "s_loss1"):
                sums[k] = sums.get(k, 0.0) + stats[k].item()
            bar.update(1)
        epoch += 1
        record = {"epoch": epoch, "loss": sum(sums.values()) / steps, **{k: v / steps for k, v in sums.items()},
                  "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
        history.append(record)
        append_jsonl(out / "log.jsonl", record)
        atomic_torch_save(last, {"config": config, "vocab": vocab.words[2:], "text": text.state_dict(),
                                 "image": image.state_dict(), "opt": opt.state_dict(), "loader": loader.state_dict(),
                                 "rng": torch.get_rng_state(), "history": history, "epoch": epoch})
    bar.close()
    if epoch < epochs:
        return {"status": "paused", "epoch": epoch, "epochs": epochs, "out_dir": str(out)}
    test = build_dataset(dataset, "test", imsize, None, root=root, **(dataset_kwargs or {}))
    test_ids, test_lengths = _tokens(test, vocab)
    retrieval = retrieval_accuracy(text, image, test, test_ids, test_lengths, device, seed=seed)
    atomic_torch_save(out / "final.pt", {"config": config, "vocab": vocab.words[2:], "text": text.state_dict(),
                                         "image": image.state_dict()})
    result = {"status": "finished", "epoch": epoch, "final_loss": history[-1]["loss"], "first_loss": history[0]["loss"],
              "retrieval_top1": retrieval["top1"], "retrieval_chance": retrieval["chance"],
              "retrieval_n": retrieval["n"], "vocab": len(vocab.words), "out_dir": str(out)}
    (out / "result.json").write_text(json.dumps(result, indent=1))
    if log:
        log(json.dumps(result))
    return result


EXAMPLES = """examples:
  python -m ganblocks.text.pretrain_damsm --out runs/damsm-synthbirds --size small
  python -m ganblocks.text.pretrain_damsm --out runs/damsm-cub --dataset stackgan --root /data/birds \\
      --image-encoder inception_v3 --inception-weights /data/inception_v3_google-0cc3c7bd.pth
(a second call with the same --out resumes; results in DIR/result.json)"""


def main(argv: list[str] | None = None) -> int:
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    p = argparse.ArgumentParser(prog="python -m ganblocks.text.pretrain_damsm", description=__doc__.splitlines()[0],
                                formatter_class=Formatter, epilog=EXAMPLES)
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl, result.json); resumed if present")
    p.add_argument("--dataset", default="synthbirds", help="dataset registry name (default synthbirds)")
    p.add_argument("--root", default=None, help="dataset folder (synthbirds: default the cached build)")
    p.add_argument("--size", default=None, help="synthbirds size preset: tiny, small, default")
    p.add_argument("--image-encoder", default="small_cnn", choices=["small_cnn", "inception_v3"],
                   help="damsm image encoder")
    p.add_argument("--inception-weights", default=None, help="torchvision inception_v3_google-*.pth (inception_v3)")
    p.add_argument("--dim", type=int, default=256, help="D, word/sentence/region feature size")
    p.add_argument("--imsize", type=int, default=64, help="image size the loader crops to")
    p.add_argument("--epochs", type=int, default=20, help="epochs in all (a resumed run counts earlier ones)")
    p.add_argument("--batch-size", type=int, default=48, help="batch size (bird.yml 48)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (bird.yml ENCODER_LR)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="torch device")
    a = p.parse_args(argv)
    kwargs = {"size": a.size} if a.dataset == "synthbirds" and a.root is None and a.size else None
    from ganblocks.data.dataset import DatasetError
    from ganblocks.io import UnsafeFileError

    try:
        pretrain_damsm(a.out, a.dataset, a.root, kwargs, a.image_encoder, a.inception_weights, dim=a.dim,
                       imsize=a.imsize, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed, device=a.device)
    except (DatasetError, UnsafeFileError) as error:  # bad or crafted data: the message names the file
        print(f"{p.prog}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
