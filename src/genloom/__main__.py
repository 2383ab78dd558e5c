"""`python -m genloom`, the form torchrun launches: `torchrun --nproc-per-node 2 -m genloom train ...`."""
from genloom.cli import run

if __name__ == "__main__":
    run()
