"""``python -m lookalike {bot,build,index,match} …``: see lookalike/cli.py."""

import sys

from lookalike.cli import main

if __name__ == "__main__":
    sys.exit(main())
