"""The one exception users see: a one-line message that says what is wrong and how to fix it."""


class GenloomError(Exception):
    """Bad input or an impossible request; the CLI prints it on one line and exits with code 2."""
