import sys

from sparkrl.cli import main

sys.exit(main())
