import sys

from seedgrid.worker.cli import main

sys.exit(main())
