import sys

from extension.main import main

sys.exit(main())
