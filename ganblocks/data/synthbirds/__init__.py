"""SynthBirds-200: the built-in procedural text-to-image benchmark, written in the StackGAN CUB layout.

Each class ("species") fixes 11 attributes: 7 coarse ones that show at 64x64 (body, wing, head and breast
colour, size, beak shape, tail shape) and 4 fine ones that only show at 128 or 256 (breast stripes, wing
bars, eye ring, back spots). The fine patterns are zero-mean around the part colour and about one 64-px
pixel wide, so box-downsampling to 64x64 averages them away while 256x256 keeps them.

A bird is drawn as a part-label map at 2-3x supersampling (PIL polygons), coloured and patterned with
vectorised numpy in the bird's own coordinates, box-downsampled, and composited over a varied background
with a lighting gradient. Per image: facing direction, tilt, scale, position, background and lighting.
Every random number of an image is drawn before its attributes are used, so two renders with the same
seed and attributes that differ in one fine attribute differ only in that attribute's pixels.

    >>> images, attrs = render([0, 1, 2], seed=7, size=128)      # fresh renders, (3, 3, 128, 128) uint8
    >>> root = ensure_built(size="tiny", seed=0)                  # CUB layout in the cache, built once

The parts, each read top to bottom: attributes.py (the attribute table), captions.py (the caption grammar),
drawing.py (rendering), cub_layout.py (building the dataset on disk). Their public names are importable
from here (`from ganblocks.data import synthbirds; synthbirds.render(...)`).
"""

from ganblocks.data.synthbirds.attributes import (  # noqa: F401 - re-exported
    ATTRIBUTE_INDEX,
    COARSE,
    COLORS,
    COLOR_NAMES,
    FINE,
    MIN_SIZE,
    NUM_ATTRIBUTES,
    SPEC,
    Attribute,
    attribute_spec,
    class_attributes,
)
from ganblocks.data.synthbirds.captions import make_caption  # noqa: F401 - re-exported
from ganblocks.data.synthbirds.cub_layout import (  # noqa: F401 - re-exported
    GENERATOR_VERSION,
    MANIFEST,
    N_CAPTIONS,
    PRESETS,
    TRAIN_FRACTION,
    build,
    class_dir,
    ensure_built,
    read_manifest,
    resolve_config,
)
from ganblocks.data.synthbirds.drawing import (  # noqa: F401 - re-exported
    BEAK,
    BG,
    BODY,
    BRANCH,
    BREAST,
    EYE,
    HEAD,
    LEG,
    RING,
    TAIL,
    WING,
    render,
    render_attributes,
    render_one,
)
