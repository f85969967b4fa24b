import sys

from cadre_core.cli import main

sys.exit(main())
