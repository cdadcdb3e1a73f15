"""progress(iterable=None, total=None, desc=None): a progress bar sent as `progress` messages.

Updates are throttled to about 10 a second; the final one (close, or the end of the iterable)
is always sent. The kernel draws the bar (count, rate, ETA) and updates it in place.
"""
import itertools
import os
import time

from . import _channel

MIN_INTERVAL = 0.1
_bar_ids = itertools.count(1)
_open_bars = []


class progress:
    def __init__(self, iterable=None, total=None, desc=None, min_interval=MIN_INTERVAL):
        if total is None and iterable is not None:
            try:
                total = len(iterable)
            except (TypeError, AttributeError):
                total = None
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.n = 0
        self.closed = False
        self.bar_id = "bar-%d-%d" % (os.getpid(), next(_bar_ids))
        self._min_interval = min_interval
        self._last_sent = 0.0
        _open_bars.append(self)
        self._send()

    def _send(self):
        self._last_sent = time.monotonic()
        message = {"type": "progress", "barId": self.bar_id, "n": self.n, "total": self.total, "closed": self.closed}
        if self.desc is not None:
            message["description"] = str(self.desc)
        _channel.emit(message)

    def update(self, n=1):
        """Advance by n; sends at most ~10 updates a second."""
        if self.closed:
            return
        self.n += n
        if time.monotonic() - self._last_sent >= self._min_interval:
            self._send()

    def set_description(self, desc):
        self.desc = desc

    def reset(self, total=None):
        self.n = 0
        if total is not None:
            self.total = total
        self._send()

    def close(self):
        """Send the final state (always) and stop."""
        if self.closed:
            return
        self.closed = True
        if self in _open_bars:
            _open_bars.remove(self)
        self._send()

    def __iter__(self):
        if self.iterable is None:
            raise TypeError("progress() was created without an iterable; use update(n) instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self):
        return self.total if self.total is not None else 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "progress(n=%d, total=%r, desc=%r)" % (self.n, self.total, self.desc)


def close_open_bars():
    """At the end of a cell: bars the code left open get their final update."""
    for bar in list(_open_bars):
        bar.close()
