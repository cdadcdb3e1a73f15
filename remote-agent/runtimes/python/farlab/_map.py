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


def _checked(result, max_bytes):
    """The result itself if it can travel as JSON within max_bytes, else an error result."""
    if "error" in result:
        return result
    try:
        size = len(_encode(result.get("value")))
    except ValueError:  # NaN / Infinity: null, as the channel does for every message
        return {"index": result["index"], "value": _channel._finite(result["value"])}
    except (TypeError, OverflowError, RecursionError) as e:
        return {
            "index": result["index"],
            "error": {
                "ename": "SerializationError",
                "evalue": "the result (%s) cannot be sent back as JSON: %s" % (type(result["value"]).__name__, e),
                "traceback": [],
            },
        }
    if size > max_bytes:
        return {
            "index": result["index"],
            "error": {
                "ename": "ResultTooLarge",
                "evalue": "the result is %.1f MiB as JSON, over the %%map limit of %d MiB per result"
                % (size / 2**20, max_bytes // 2**20),
                "traceback": [],
            },
        }
    return result


def run_batch(namespace, message, allow_interrupt):
    started = time.monotonic()
    reply = {"type": "map_results", "batch": message["batch"], "results": []}
    try:
        fn = _lookup(namespace, message["fn"])
    except Exception as exc:
        reply["fnError"] = {"ename": type(exc).__name__, "evalue": str(exc)}
        reply["elapsedMs"] = (time.monotonic() - started) * 1000
        _channel.emit(reply)
        return
    results = reply["results"]
    is_async = inspect.iscoroutinefunction(fn)
    allow_interrupt(True)
    try:
        for item in message["items"]:
            try:
                value = fn(item["value"])
                if is_async or inspect.isawaitable(value):
                    value = _await(value)
                results.append({"index": item["index"], "value": value})
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit too: one input's sys.exit() is its error
                results.append({"index": item["index"], "error": format_error(exc)})
    except KeyboardInterrupt:
        reply["interrupted"] = True
    finally:
        allow_interrupt(False)
    reply["elapsedMs"] = (time.monotonic() - started) * 1000
    reply["id"] = _channel.current_job()
    for hook in _channel._before_emit:  # the function's prints go before its results
        hook()
    try:
        line = _encode(reply)
        if len(line) > message["maxResultBytes"]:
            raise ValueError("large")
    except (TypeError, ValueError, OverflowError, RecursionError):
        reply["results"] = [_checked(r, message["maxResultBytes"]) for r in results]
        line = _encode(reply)
    _channel._outbox.put((line + "\n").encode("ascii"))
