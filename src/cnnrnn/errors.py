"""The one exception type a user sees: a message that says what is wrong and what to do."""


class UserError(Exception):
    """A problem with the user's input, data or environment (not a bug in cnnrnn).

    The command line prints its message on one line and exits non-zero, without a traceback.
    """
