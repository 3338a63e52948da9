"""Suite-wide settings: tests never read or write the user's ganblocks cache."""

import os
import tempfile

# Set at import time, before any test module builds a dataset or an evaluator.
if not os.environ.get("GANBLOCKS_CACHE"):
    os.environ["GANBLOCKS_CACHE"] = tempfile.mkdtemp(prefix="ganblocks-test-cache-")
