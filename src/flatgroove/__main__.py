"""`python -m flatgroove`: the CLI (what torchrun -m flatgroove runs on every rank)."""

import sys

from flatgroove.cli import main

if __name__ == "__main__":
    sys.exit(main())
