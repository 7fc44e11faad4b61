"""``python -m novamind.app.demo`` (``make demo``)."""

import sys

from novamind.app.demo.run import main

sys.exit(main())
