"""``python -m fastcnn``: see :mod:`fastcnn.cli`."""

import sys

from .cli import main

sys.exit(main())
