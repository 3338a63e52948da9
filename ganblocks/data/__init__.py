"""Datasets: the built-in SynthBirds-200 benchmark, StackGAN/CUB/folder loaders, and the batch loader.

`build_dataset(name, split, imsize, text_encoder, root=None, **kw)` returns a `TextImageDataset`;
`BatchLoader` turns it into epochs of `ganblocks.types.Batch` on the training device.
"""

from ganblocks.data import synthbirds  # noqa: F401
from ganblocks.data.batching import BatchLoader  # noqa: F401
from ganblocks.data.dataset import DatasetError, TextImageDataset, build_dataset, load_size  # noqa: F401
from ganblocks.data import loaders, folder, attngan  # noqa: F401,E402  (register the dataset loaders)
