"""The one exception type of the data layer, and how its messages quote other errors."""


class DataError(Exception):
    """Missing, corrupt or unsupported data. The CLI prints str(err) on one line and exits 2."""


def one_line(err: BaseException, text: str | None = None) -> str:
    """``text`` (default: ``str(err)``) with all whitespace runs made single spaces, or err's type name if
    that text is empty: for quoting ``err`` inside a DataError message, which must stay one line."""
    if text is None:
        text = str(err)
    return " ".join((text or type(err).__name__).split())
