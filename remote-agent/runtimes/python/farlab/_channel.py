"""The channel to the agent: newline-delimited JSON over the Unix socket named by FARLAB_CHANNEL.

Messages are written by one writer thread. Callers hand messages over with SimpleQueue.put, a
single C call, so a KeyboardInterrupt raised in the main thread can never cut a message in half.

With FARLAB_CHANNEL_RESUME=1 (the Docker backend: the runtime outlives the agent) the channel is
resumable (remote-agent/protocol/runner.ts): the writer numbers messages, keeps them until the
agent's `ack`, and when the socket drops the reader connects again (every 0.2 s, for up to
FARLAB_CHANNEL_RESUME_S seconds), says `ready` with `resume`, and after the agent's `resume`
the writer sends again what the agent has not journalled.
"""
import collections
import json
import math
import os
import queue
import socket
import threading
import time

_outbox = queue.SimpleQueue()
_sock = None
_path = None
_job_id = None
_before_emit = []  # hooks run before every non-stream message (stream buffers flush there)
_RESUMABLE = os.environ.get("FARLAB_CHANNEL_RESUME") == "1"
_RECONNECT_S = 0.2
_lock = threading.Lock()  # guards the fields below and writes to _sock
_ready = None  # the `ready` message (bytes), said again on reconnect
_seq = 0  # seq of the last numbered message
_job_first_seq = 1  # seq of the first message of the current job
_unacked = collections.deque()  # (seq, bytes) the agent has not acknowledged (resumable channels)
_connected = threading.Event()  # the socket is up (and, after a reconnect, resumed)


def connect(path):
    global _sock, _path
    _path = path
    _sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _sock.connect(path)
    _connected.set()
    threading.Thread(target=_write_loop, name="farlab-channel-writer", daemon=True).start()
    return _sock


def say_ready(message):
    """The runner's first message (unnumbered); said again, with `resume`, after a reconnect."""
    global _ready
    _ready = message
    _outbox.put(("raw", encode(message)))


def set_job(job_id):
    global _job_id
    _job_id = job_id
    _outbox.put(("job", job_id))  # the writer notes the seq of the job's first message


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


def _send(data):
    """One write to the current socket; False when it is down (a resumable channel keeps going)."""
    try:
        with _lock:
            _sock.sendall(data)
        return True
    except OSError:
        return False


def _write_loop():
    global _seq, _job_first_seq
    while True:
        item = _outbox.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        if isinstance(item, tuple):
            kind, value = item
            if kind == "job":
                with _lock:
                    _job_first_seq = _seq + 1
                continue
            data = value  # "raw": unnumbered
        elif _RESUMABLE:
            # Numbered and kept until acknowledged. Sent now only while the channel is up (under
            # the lock that _resume holds): otherwise _resume sends it, so it goes out once.
            with _lock:
                _seq += 1
                data = b'{"seq":%d,' % _seq + item[1:]  # every message is a JSON object
                _unacked.append((_seq, data))
                if _connected.is_set():
                    try:
                        _sock.sendall(data)
                    except OSError:
                        pass  # the reader notices the drop; this one is sent again on resume
            continue
        else:
            data = item
        if not _send(data) and not _RESUMABLE:
            return


def _acknowledge(seq):
    with _lock:
        while _unacked and _unacked[0][0] <= seq:
            _unacked.popleft()


def _resume(after):
    """The agent journalled everything up to `after`: send the rest again, in order."""
    with _lock:
        try:
            for seq, data in _unacked:
                if seq > after:
                    _sock.sendall(data)
        except OSError:
            return  # dropped again: the reader reconnects, and the next resume sends them
        _connected.set()


def _reconnect():
    """Connect again until the resume deadline; say `ready` with `resume`. False: give up."""
    global _sock
    deadline = time.monotonic() + float(os.environ.get("FARLAB_CHANNEL_RESUME_S", "600"))
    _connected.clear()
    while time.monotonic() < deadline:
        time.sleep(_RECONNECT_S)
        fresh = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            fresh.connect(_path)
        except OSError:
            fresh.close()
            continue
        with _lock:
            _sock.close()
            _sock = fresh
            ready = dict(_ready or {}, resume={"job": _job_id, "jobFirstSeq": _job_first_seq, "lastSeq": _seq})
            if ready["resume"]["job"] is None:
                del ready["resume"]["job"]
        if _send(encode(ready)):
            return True
    return False


def read_messages(on_message, on_eof):
    """Reader thread body: parse lines from the agent and hand them to on_message."""
    buffer = b""
    while True:
        try:
            chunk = _sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            if _RESUMABLE and _reconnect():
                buffer = b""
                continue
            on_eof()
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if not line.strip():
                continue
            message = json.loads(line.decode("utf-8"))
            kind = message.get("type")
            if kind == "ack":
                _acknowledge(message.get("seq", 0))
            elif kind == "resume":
                _resume(message.get("after", 0))
            else:
                on_message(message)
