import sys

from cadre_app.cli import main

sys.exit(main())
