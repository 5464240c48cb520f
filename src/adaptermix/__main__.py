"""``python -m adaptermix`` runs the CLI."""

import sys

from adaptermix.cli.main import main

sys.exit(main())
