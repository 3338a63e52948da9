"""`python -m ablations` is `python -m ablations.run`."""

import sys

from ablations.run import main

sys.exit(main())
