"""The runner's main loop: a reader thread takes messages off the channel; cells run in the main
thread (so SIGINT raises KeyboardInterrupt in user code, as in plain Python)."""
import os
import queue
import signal
import sys
import threading

from . import _channel, _execute, _map, _streams

_interruptible = False


def _on_sigint(signum, frame):
    # KeyboardInterrupt only while user code runs; between cells (or while the runner reports a
    # result) a SIGINT is ignored, so it can never break the runner itself.
    if _interruptible:
        raise KeyboardInterrupt


def _allow_interrupt(flag):
    global _interruptible
    _interruptible = flag


def main():
    channel_path = os.environ.get("FARLAB_CHANNEL")
    if not channel_path:
        sys.stderr.write("farlab_runner: FARLAB_CHANNEL (the agent's Unix socket path) is not set\n")
        return 2
    _channel.connect(channel_path)
    inbox = queue.SimpleQueue()
    threading.Thread(
        target=_channel.read_messages,
        args=(inbox.put, lambda: inbox.put({"type": "shutdown"})),
        name="farlab-channel-reader",
        daemon=True,
    ).start()
    signal.signal(signal.SIGINT, _on_sigint)
    _streams.install()
    namespace = _execute.Namespace()
    _channel.say_ready({"type": "ready", "pid": os.getpid(), "lang": "python"})
    while True:
        try:
            message = inbox.get()
            if message.get("type") == "shutdown":
                break
            if message.get("type") == "map_batch":
                _channel.set_job(message["id"])
                _map.run_batch(namespace, message, _allow_interrupt)
                continue
            if message.get("type") != "execute":
                continue
            _channel.set_job(message["id"])
            status = _execute.run_cell(
                namespace,
                message.get("code", ""),
                message.get("inputs") or {},
                bool(message.get("wantValue")),
                _allow_interrupt,
            )
            _channel.emit({"type": "done", "status": status})
        except KeyboardInterrupt:
            continue  # a SIGINT that landed in the runner's own code between cells
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    _channel.drain()
    return 0
