"""sys.stdout / sys.stderr replacements that send `stream` messages over the channel.

Text is coalesced: a write that ends a line is sent at once unless something was sent in the last
50 ms, in which case a background flusher sends it within 50 ms. Every other message (display,
result, error, done) flushes first, so output keeps its order. Native code, os.system and
subprocesses write to fd 1/2 directly; the agent captures those pipes.
"""
import io
import os
import threading
import time

from . import _channel

FLUSH_INTERVAL = 0.05
MAX_BUFFER = 64 * 1024


class _BinaryAdapter:
    """`sys.stdout.buffer` for code that writes bytes."""

    def __init__(self, writer):
        self._writer = writer

    def write(self, data):
        self._writer.write(bytes(data).decode(self._writer.encoding, "replace"))
        return len(data)

    def flush(self):
        self._writer.flush()


class ChannelWriter(io.TextIOBase):
    def __init__(self, name, fd):
        super().__init__()
        self._name = name
        self._fd = fd
        self._lock = threading.Lock()
        self._parts = []
        self._size = 0
        self._last_sent = 0.0
        self._pending = threading.Event()
        self.buffer = _BinaryAdapter(self)

    # io.TextIOBase API -------------------------------------------------------------------
    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    @property
    def name(self):
        return "<%s>" % self._name

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        # The real pipe: code that hands sys.stdout to a subprocess writes at fd level.
        return self._fd

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        if not text:
            return 0
        with self._lock:
            self._parts.append(text)
            self._size += len(text)
            urgent = self._size >= MAX_BUFFER or (
                "\n" in text and time.monotonic() - self._last_sent >= FLUSH_INTERVAL
            )
        if urgent:
            self.flush()
        else:
            self._pending.set()
        return len(text)

    def flush(self):
        with self._lock:
            if not self._parts:
                return
            text = "".join(self._parts)
            self._parts = []
            self._size = 0
            self._last_sent = time.monotonic()
            # Sent under the lock: two flushing threads must not swap the order of chunks.
            _channel.emit({"type": "stream", "name": self._name, "text": text}, flush_streams=False)

    def flush_later_loop(self):
        while True:
            self._pending.wait()
            self._pending.clear()
            time.sleep(FLUSH_INTERVAL)
            self.flush()


def install():
    import sys

    writers = [ChannelWriter("stdout", 1), ChannelWriter("stderr", 2)]
    for writer in writers:
        threading.Thread(target=writer.flush_later_loop, name="farlab-%s-flusher" % writer._name, daemon=True).start()
        _channel._before_emit.append(writer.flush)
    sys.stdout, sys.stderr = writers
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_write_to_fds_in_child)
    return writers


def _write_to_fds_in_child():
    """A forked child (multiprocessing, DataLoader workers) has no channel threads, and its copy of
    a writer's lock may be held: it writes to fd 1/2 instead, which the agent captures too."""
    import sys

    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="replace", line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="replace", line_buffering=True)
