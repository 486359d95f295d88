"""`python -m ocean.slo generate|check`."""

import sys

from ocean.slo.generate import main

if __name__ == "__main__":  # not when a tool walks the package and imports every module
    sys.exit(main())
