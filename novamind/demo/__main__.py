"""``python -m novamind.demo`` (``make demo``)."""

import sys

from novamind.demo.run import main

sys.exit(main())
