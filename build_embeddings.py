#!/usr/bin/env python3
"""Operators: describe photos/ into the built catalog in assets/ (incremental), then run build_index.py.

The same as ``python -m lookalike build``; ``--help`` lists the flags.
"""

import sys

from lookalike.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]]))
