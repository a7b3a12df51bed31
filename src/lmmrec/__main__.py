"""`python -m lmmrec ...` (and `torchrun ... -m lmmrec train ...`): the `lmmrec` CLI."""

from lmmrec.cli.main import main

if __name__ == "__main__":
    main()
