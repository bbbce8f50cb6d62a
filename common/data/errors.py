"""The one exception type of the data layer."""


class DataError(Exception):
    """Missing, corrupt or unsupported data. The CLI prints str(err) on one line and exits 2."""
