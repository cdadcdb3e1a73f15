"""%map batches: call a function of the session's namespace on each item of a `map_batch` and
answer with one `map_results` message (protocol: remote-agent/protocol/runner.ts).

Fast path for thousands of tiny inputs: no per-item message, the whole batch's results are
encoded once; only when that fails (a value JSON cannot carry, a result over the size limit) is
each result checked alone, so the failing one is named and the others still go back.
Output the function prints travels like a cell's (`stream` messages with the map's job id).
"""
import asyncio
import inspect
import json
import time

from . import _channel, _display
from ._execute import format_error

_loop = None


def _lookup(namespace, name):
    """The callable `name` (a dotted path like `tools.score` is followed attribute by attribute)."""
    head, *rest = name.split(".")
    if head not in namespace.globals:
        raise NameError("name '%s' is not defined in the session" % head)
    value = namespace.globals[head]
    for part in rest:
        value = getattr(value, part)
    if not callable(value):
        raise TypeError("'%s' is a %s, not a function" % (name, type(value).__name__))
    return value


def _await(value):
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(value)


def _encode(value):
    return json.dumps(value, allow_nan=False, default=_display._json_default)


def _check(value, max_bytes):
    """(value as it will travel, None) or (None, error) when JSON cannot carry it within max_bytes."""
    try:
        try:
            size = len(_encode(value))
        except ValueError:  # NaN / Infinity: null, as the channel does for every message
            value = _channel._finite(value)
            size = len(_encode(value))
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        return None, ("SerializationError", "the result (%s) cannot be sent back as JSON: %s" % (type(value).__name__, e))
    if size > max_bytes:
        return None, (
            "ResultTooLarge",
            "the result is %.1f MiB as JSON, over the %%map limit of %d MiB per result" % (size / 2**20, max_bytes // 2**20),
        )
    return value, None


def run_batch(namespace, message, allow_interrupt):
    started = time.monotonic()
    indices, values, errors = [], [], []
    reply = {"type": "map_results", "batch": message["batch"], "indices": indices, "values": values, "errors": errors}
    try:
        fn = _lookup(namespace, message["fn"])
    except Exception as exc:
        reply["fnError"] = {"ename": type(exc).__name__, "evalue": str(exc)}
        reply["elapsedMs"] = (time.monotonic() - started) * 1000
        _channel.emit(reply)
        return
    is_async = inspect.iscoroutinefunction(fn)
    allow_interrupt(True)
    try:
        for index, value in zip(message["indices"], message["values"]):
            try:
                result = fn(value)
                if is_async or inspect.isawaitable(result):
                    result = _await(result)
                values.append(result)
                indices.append(index)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit too: one input's sys.exit() is its error
                errors.append(dict(index=index, **format_error(exc)))
    except KeyboardInterrupt:
        reply["interrupted"] = True
    finally:
        allow_interrupt(False)
    if len(values) > len(indices):  # interrupted between the two appends
        values.pop()
    reply["elapsedMs"] = (time.monotonic() - started) * 1000
    reply["id"] = _channel.current_job()
    for hook in _channel._before_emit:  # the function's prints go before its results
        hook()
    limit = message["maxResultBytes"]
    try:
        line = _encode(reply)
        if len(line) > limit:
            raise ValueError("over the limit: check each result")
    except (TypeError, ValueError, OverflowError, RecursionError):
        kept_indices, kept_values = [], []
        for index, value in zip(indices, values):
            value, problem = _check(value, limit)
            if problem:
                errors.append({"index": index, "ename": problem[0], "evalue": problem[1], "traceback": []})
            else:
                kept_indices.append(index)
                kept_values.append(value)
        reply["indices"], reply["values"] = kept_indices, kept_values
        line = _encode(reply)
    _channel._outbox.put((line + "\n").encode("ascii"))
