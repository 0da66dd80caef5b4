import sys

from afterglow.cli import main

sys.exit(main())
