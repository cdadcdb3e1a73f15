"""Running one cell like IPython: exec all statements but the last, eval the last if it is an
expression, show its value as a MIME bundle, format errors with the cell's own line numbers."""
import ast
import json
import linecache
import os
import sys
import traceback
import types

from . import _channel, _display, _progress

_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # Python >= 3.8
_CO_COROUTINE = 0x0080


class Namespace:
    """The session's persistent state: one __main__-like module dict shared by every cell."""

    def __init__(self):
        self.module = types.ModuleType("__main__")
        self.module.__dict__["__builtins__"] = __builtins__
        sys.modules["__main__"] = self.module  # pickle and friends look things up there
        self.globals = self.module.__dict__
        self.cells = 0
        self.loop = None

    def run_code(self, code):
        """exec/eval a code object; a cell with top-level await runs on the session's event loop."""
        result = eval(code, self.globals)
        if code.co_flags & _CO_COROUTINE:
            import asyncio

            if self.loop is None or self.loop.is_closed():
                self.loop = asyncio.new_event_loop()
            result = self.loop.run_until_complete(result)
        return result


def _register_source(filename, code):
    # linecache keeps entries whose mtime is None, so tracebacks can quote the cell's lines.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)


_RUNNER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _drop_runner_frames(te, seen):
    """Remove the runner's own frames (exec of the cell, the SIGINT handler) from a traceback."""
    if te is None or id(te) in seen:
        return
    seen.add(id(te))
    kept = [frame for frame in te.stack if not os.path.abspath(frame.filename).startswith(_RUNNER_DIR + os.sep)]
    te.stack = traceback.StackSummary.from_list(kept)
    _drop_runner_frames(te.__cause__, seen)
    _drop_runner_frames(te.__context__, seen)


def format_error(exc, frames=True):
    """ename/evalue/traceback; the traceback's frames are the cell's (File "<cell N>", line L)."""
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__ if frames else None)
    _drop_runner_frames(te, set())
    return {
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": "".join(te.format()).rstrip("\n").split("\n"),
    }


def json_value(value):
    """(value, None) when value is JSON-serialisable, else (None, why)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False, default=_display._json_default)), None
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        return None, "the value of the last expression (%s) is not JSON-serialisable: %s" % (type(value).__name__, e)


def _show_figures(result):
    if "matplotlib.pyplot" not in sys.modules:
        return
    try:
        from .matplotlib_backend import show_open_figures

        show_open_figures(skip=result)  # a figure that is the cell's value is shown once, as the result
    except Exception as e:
        sys.stderr.write("farlab: could not show matplotlib figures: %s: %s\n" % (type(e).__name__, e))


def _compile(code, filename):
    """(code object of all statements but the last expression, code object of that expression)."""
    flags = _TOP_LEVEL_AWAIT
    tree = ast.parse(code, filename, "exec")
    body, last = tree.body, None
    if body and isinstance(body[-1], ast.Expr):
        body, last = body[:-1], ast.Expression(body[-1].value)
    body_code = compile(ast.Module(body=body, type_ignores=[]), filename, "exec", flags, dont_inherit=True) if body else None
    last_code = compile(last, filename, "eval", flags, dont_inherit=True) if last is not None else None
    return body_code, last_code


def run_cell(ns, code, inputs, want_value, allow_interrupt):
    """Run a cell; returns the done status ("ok" | "error" | "interrupted").

    allow_interrupt(flag) switches whether SIGINT raises KeyboardInterrupt (only in user code).
    """
    ns.cells += 1
    filename = "<cell %d>" % ns.cells
    _register_source(filename, code)
    ns.globals.update(inputs or {})
    status = "ok"
    value, has_value = None, False
    try:
        body, last = _compile(code, filename)
    except (SyntaxError, ValueError, OverflowError) as exc:  # the cell does not compile: no frames to show
        _channel.emit(dict(type="error", **format_error(exc, frames=False)))
        return "error"
    try:
        allow_interrupt(True)
        try:
            if body is not None:
                ns.run_code(body)
            if last is not None:
                value = ns.run_code(last)
                has_value = True
        finally:
            allow_interrupt(False)
    except KeyboardInterrupt as exc:
        status = "interrupted"
        _channel.emit(dict(type="error", **format_error(exc)))
    except BaseException as exc:  # SystemExit too: the session survives a sys.exit() in a cell
        status = "error"
        _channel.emit(dict(type="error", **format_error(exc)))
    _progress.close_open_bars()
    _show_figures(value if has_value else None)
    if status == "ok":
        _emit_result(ns, value, has_value, want_value)
    return status


def _emit_result(ns, value, has_value, want_value):
    show = has_value and value is not None
    if not show and not want_value:
        return
    message = {"type": "result", "data": {}, "metadata": {}}
    if show:
        ns.globals["_"] = value
        try:
            message["data"], message["metadata"] = _display.mime_bundle(value)
        except Exception as e:
            message["data"] = {"text/plain": _display._safe_repr(value)}
            sys.stderr.write("farlab: could not build a rich representation: %s: %s\n" % (type(e).__name__, e))
    if want_value:
        if not has_value:
            message["valueError"] = "the cell does not end with an expression, so it has no value"
        else:
            message["value"], error = json_value(value)
            if error:
                del message["value"]
                message["valueError"] = error
    _channel.emit(message)
