"""``lookalike {bot,build,index,match,blend} …`` (the console script) or ``python -m lookalike …``: see cli.py."""

import sys

from lookalike.cli import main

if __name__ == "__main__":
    sys.exit(main())
