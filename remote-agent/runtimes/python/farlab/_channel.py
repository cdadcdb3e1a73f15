"""The channel to the agent: newline-delimited JSON over the Unix socket named by FARLAB_CHANNEL.

Messages are written by one writer thread. Callers hand messages over with SimpleQueue.put, a
single C call, so a KeyboardInterrupt raised in the main thread can never cut a message in half.
"""
import json
import math
import queue
import socket
import threading

_outbox = queue.SimpleQueue()
_sock = None
_job_id = None
_before_emit = []  # hooks run before every non-stream message (stream buffers flush there)


def connect(path):
    global _sock
    _sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _sock.connect(path)
    threading.Thread(target=_write_loop, name="farlab-channel-writer", daemon=True).start()
    return _sock


def set_job(job_id):
    global _job_id
    _job_id = job_id


def current_job():
    return _job_id


def _finite(value):
    """Replace NaN/Infinity (not JSON) with null, so that the agent's JSON.parse accepts the line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def encode(message):
    try:
        text = json.dumps(message, allow_nan=False, default=str)
    except ValueError:
        text = json.dumps(_finite(message), allow_nan=False, default=str)
    return (text + "\n").encode("ascii")  # json.dumps escapes non-ASCII (lone surrogates too)


def emit(message, flush_streams=True):
    """Queue one message; `id` is filled in with the running job's id."""
    if flush_streams:
        for hook in _before_emit:
            hook()
    if "id" not in message and message.get("type") not in ("ready",):
        message["id"] = _job_id
    _outbox.put(encode(message))


def drain():
    """Wait until every queued message has been written (used before exit)."""
    done = threading.Event()
    _outbox.put(done)
    done.wait(5)


def _write_loop():
    while True:
        item = _outbox.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        try:
            _sock.sendall(item)
        except OSError:
            return


def read_messages(on_message, on_eof):
    """Reader thread body: parse lines from the agent and hand them to on_message."""
    buffer = b""
    while True:
        try:
            chunk = _sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            on_eof()
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                on_message(json.loads(line.decode("utf-8")))
