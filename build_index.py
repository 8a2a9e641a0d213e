#!/usr/bin/env python3
"""Operators: build the HNSW index and the similarity calibration from the built catalog in assets/.

The same as ``python -m lookalike index``; ``--help`` lists the flags.
"""

import sys

from lookalike.cli import main

if __name__ == "__main__":
    sys.exit(main(["index", *sys.argv[1:]]))
