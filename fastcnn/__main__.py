"""``python -m fastcnn``: see :mod:`fastcnn.cli`."""

import sys

from fastcnn.cli import main

sys.exit(main())
