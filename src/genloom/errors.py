"""What users see when something is wrong: a one-line error that says what and how to fix it, or a notice."""
import sys


class GenloomError(Exception):
    """Bad input or an impossible request; the CLI prints it on one line and exits with code 2."""


def note(message: str) -> None:
    """A line on stderr about the work in progress (written so that it does not break a progress bar)."""
    from tqdm.auto import tqdm  # only when there is something to say

    tqdm.write(f"genloom: {message}", file=sys.stderr)


def warn(message: str) -> None:
    """A one-line warning on stderr that does not stop the work."""
    note(f"warning: {message}")
