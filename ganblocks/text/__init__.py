"""Text encoders (`text_encoder` registry): precomputed, bow, rnn, minilm, oracle (diagnosis only), damsm,
damsm_sentence, damsm_words (AttnGAN's packed captions); text transforms (`text_transform` registry): none,
gan_int; the `regulariser` damsm (AttnGAN's lambda * DAMSM term of G's loss).

Every encoder has `encode(captions: list[str]) -> float32 (N, dim)`, `dim` and `cache_key()`.
"""

from ganblocks.text.base import TextEncoder, tokenize  # noqa: F401
from ganblocks.text import bow, minilm, oracle, precomputed, rnn  # noqa: F401  (register the encoders)
from ganblocks.text import transforms  # noqa: F401  (text transforms for G, kind `text_transform`)
from ganblocks.text import damsm  # noqa: F401  (DAMSM word/sentence and image encoders, kind `damsm`)
from ganblocks.text import damsm_words  # noqa: F401  (damsm_sentence, damsm_words: pretrained on the run's data)
from ganblocks.text import damsm_regulariser  # noqa: F401  (regulariser `damsm`: lambda * DAMSM in G's loss)
