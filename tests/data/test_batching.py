"""BatchLoader: shapes and range, determinism, exact mid-epoch resume, wrong captions, crop and flip."""

import pytest
import torch

from ganblocks.data import BatchLoader, build_dataset
from ganblocks.data.batching import crop_and_flip
from ganblocks.types import Batch


@pytest.fixture(scope="module")
def ds(tiny_synthbirds):
    return build_dataset("synthbirds", "train", 64, "bow", root=tiny_synthbirds)


def _collect(loader, n):
    out = []
    for _ in range(3):
        for b in loader:
            out.append(b)
            if len(out) == n:
                return out
    return out


def test_batch_shapes_range_and_types(ds):
    loader = BatchLoader(ds, 16, "cpu", seed=0)
    assert len(loader) == len(ds) // 16
    b = next(iter(loader))
    assert isinstance(b, Batch) and len(b) == 16
    assert b.images.shape == (16, 3, 64, 64) and b.images.dtype == torch.float32
    assert -1.0 <= b.images.min() and b.images.max() <= 1.0
    assert b.embeddings.shape == b.wrong_embeddings.shape == (16, ds.embedding_dim)
    assert torch.equal(b.embeddings, ds.embeddings[b.indices, b.caption_ids])
    assert torch.equal(b.class_ids, ds.class_ids[b.indices])


def test_epoch_visits_every_image_once(ds):
    loader = BatchLoader(ds, 16, "cpu", seed=1, drop_last=False)
    seen = torch.cat([b.indices for b in loader])
    assert sorted(seen.tolist()) == list(range(len(ds)))
    again = torch.cat([b.indices for b in loader])  # next epoch: a new order
    assert not torch.equal(seen, again)


def test_same_seed_same_batches_other_seed_differs(ds):
    a = _collect(BatchLoader(ds, 16, "cpu", seed=5), 8)
    b = _collect(BatchLoader(ds, 16, "cpu", seed=5), 8)
    c = _collect(BatchLoader(ds, 16, "cpu", seed=6), 8)
    for x, y in zip(a, b):
        for k in x.__dict__:
            assert torch.equal(getattr(x, k), getattr(y, k)), k
    assert not torch.equal(a[0].indices, c[0].indices)


def test_resume_mid_epoch_gives_identical_batches(ds):
    full = _collect(BatchLoader(ds, 16, "cpu", seed=2), 12)  # crosses an epoch boundary (7 per epoch)
    first = BatchLoader(ds, 16, "cpu", seed=2)
    head = _collect(first, 4)
    state = first.state_dict()
    resumed = BatchLoader(ds, 16, "cpu", seed=2)
    resumed.load_state_dict(state)
    tail = _collect(resumed, 8)
    for x, y in zip(full, head + tail):
        assert torch.equal(x.images, y.images) and torch.equal(x.wrong_embeddings, y.wrong_embeddings)
    with pytest.raises(ValueError, match="batch_size=16 but this loader has batch_size=8"):
        BatchLoader(ds, 8, "cpu", seed=2).load_state_dict(state)


def test_wrong_captions_come_from_another_class(ds):
    loader = BatchLoader(ds, 32, "cpu", seed=3, wrong="class")
    emb = ds.embeddings.reshape(-1, ds.embedding_dim)
    owner = torch.arange(len(ds)).repeat_interleave(ds.n_captions)
    for b in loader:
        match = (b.wrong_embeddings[:, None, :] == emb[None]).all(-1)  # (B, N*n)
        assert match.any(1).all()
        wrong_class = ds.class_ids[owner[match.float().argmax(1)]]
        assert (wrong_class != b.class_ids).all()


def test_shift_mode_is_official_batch_shift(ds):
    b = next(iter(BatchLoader(ds, 16, "cpu", seed=3, wrong="shift")))
    assert torch.equal(b.wrong_embeddings, b.embeddings.roll(-1, 0))


def test_crop_and_flip_match_the_stored_image(ds):
    b = next(iter(BatchLoader(ds, 8, "cpu", seed=4, crop=False, flip=False)))
    off = (ds.load_size - 64) // 2
    ref = ds.images[b.indices][:, :, off:off + 64, off:off + 64].float() / 127.5 - 1
    assert torch.allclose(b.images, ref)
    flipped = [x for x in _collect(BatchLoader(ds, 8, "cpu", seed=4, crop=False), 5)]
    stored = [ds.images[x.indices][:, :, off:off + 64, off:off + 64].float() / 127.5 - 1 for x in flipped]
    n_flip = sum(int((torch.flip(s, [-1]) - x.images).abs().amax((1, 2, 3)).lt(1e-6).sum())
                 for s, x in zip(stored, flipped))
    n_same = sum(int((s - x.images).abs().amax((1, 2, 3)).lt(1e-6).sum()) for s, x in zip(stored, flipped))
    assert n_flip + n_same == 40 and 5 < n_flip < 35


def test_gather_and_view_crops_agree():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 19, 19), dtype=torch.uint8, generator=g)
    oy, ox = torch.randint(4, (6,), generator=g), torch.randint(4, (6,), generator=g)
    flips = torch.tensor([True, False, True, True, False, False])
    a = crop_and_flip(images, oy, ox, flips, 16, gather=True)
    b = crop_and_flip(images, oy, ox, flips, 16, gather=False)
    assert a.shape == (6, 3, 16, 16) and torch.equal(a, b)
    assert torch.equal(a[0], images[0, :, oy[0]:oy[0] + 16, ox[0]:ox[0] + 16].flip(-1))


def test_pixel_levels_table_holds_the_cpu_division_for_every_level():
    """Devices other than the CPU look pixel values up in this table: it must be the CPU's arithmetic."""
    from ganblocks.data.batching import _UNIT_LEVELS, pixels_to_unit

    levels = torch.arange(256, dtype=torch.uint8).reshape(4, 4, 4, 4)
    assert torch.equal(_UNIT_LEVELS[levels.int()], pixels_to_unit(levels))
    assert _UNIT_LEVELS[0] == -1.0 and _UNIT_LEVELS[255] == 1.0 and _UNIT_LEVELS.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA, and GANBLOCKS_TEST_CUDA=1")
def test_cuda_batches_equal_cpu_batches(ds):
    cpu = _collect(BatchLoader(ds, 16, "cpu", seed=7), 3)
    gpu = _collect(BatchLoader(ds, 16, "cuda", seed=7), 3)
    for x, y in zip(cpu, gpu):
        assert y.images.is_cuda and y.embeddings.is_cuda
        assert torch.equal(x.images, y.images.cpu()) and torch.equal(x.indices, y.indices.cpu())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA, and GANBLOCKS_TEST_CUDA=1")
def test_cuda_batches_make_no_host_device_sync(ds):
    """The loop draws a batch while the GPU runs the previous step: a blocking copy would wait for it."""
    batches = iter(BatchLoader(ds, 16, "cuda", seed=7))
    next(batches)  # warm-up: the pixel table is copied to the device once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            next(batches)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_bad_arguments(ds):
    with pytest.raises(ValueError, match="wrong='nope'"):
        BatchLoader(ds, 4, "cpu", wrong="nope")
    with pytest.raises(ValueError, match="batch_size=1000"):
        BatchLoader(ds, 1000, "cpu")


def test_ddp_ranks_take_disjoint_shards_of_one_permutation(ds):
    world = 3
    loaders = [BatchLoader(ds, 4, "cpu", seed=7, rank=r, world_size=world) for r in range(world)]
    assert len({len(lo) for lo in loaders}) == 1 and len(loaders[0]) == (len(ds) // world) // 4
    epochs = [torch.cat([b.indices for b in lo]) for lo in loaders]
    seen = torch.cat(epochs)
    assert len(set(seen.tolist())) == len(seen)  # no image on two ranks in one epoch
    whole = BatchLoader(ds, 4, "cpu", seed=7)._permutation(0)
    assert torch.equal(epochs[1][:4], whole[1::world][:4])  # rank r: every world-th index from r
    # Rank 0 of 1 is the single-process loader; ranks differ in their crops and captions too.
    single = next(iter(BatchLoader(ds, 4, "cpu", seed=7, rank=0, world_size=1)))
    assert torch.equal(single.images, next(iter(BatchLoader(ds, 4, "cpu", seed=7))).images)
    with pytest.raises(ValueError, match="rank=3 of world_size=3"):
        BatchLoader(ds, 4, "cpu", rank=3, world_size=3)
    # Only rank 0 checkpoints: its loader state resumes every rank, but not another world size.
    state = loaders[0].state_dict()
    resumed = BatchLoader(ds, 4, "cpu", seed=7, rank=2, world_size=world)
    resumed.load_state_dict(state)
    assert (resumed.epoch, resumed.position) == (loaders[0].epoch, loaders[0].position)
    with pytest.raises(ValueError, match="world_size"):
        BatchLoader(ds, 4, "cpu", seed=7, rank=0, world_size=2).load_state_dict(state)
