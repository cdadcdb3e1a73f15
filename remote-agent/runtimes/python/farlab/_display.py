"""Rich representations (like IPython's display formatter) and the `display` API.

mime_bundle(obj) -> (data, metadata): plotly figures first (their own _repr_mimebundle_ depends on
plotly's renderer setup), then _repr_mimebundle_, then the _repr_*_ methods. text/plain is
always repr(obj).
"""
import base64
import itertools
import json
import os

from . import _channel

_REPR_METHODS = [
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
]
_BINARY = ("image/png", "image/jpeg")
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _b64(data):
    if isinstance(data, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(data)).decode("ascii")
    return data


def _safe_repr(obj):
    try:
        return repr(obj)
    except Exception as e:  # a broken __repr__ must not break the cell's output
        return "<%s object (repr failed: %s: %s)>" % (type(obj).__name__, type(e).__name__, e)


def _json_default(o):
    if hasattr(o, "tolist"):  # numpy arrays and scalars
        return o.tolist()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def is_plotly_figure(obj):
    """plotly's Figure / FigureWidget, or any other object that offers to_plotly_json()."""
    if isinstance(obj, type) or not callable(getattr(obj, "to_plotly_json", None)):
        return False
    if type(obj).__module__.startswith("plotly"):
        return type(obj).__name__ in ("Figure", "FigureWidget")  # not traces or layouts
    return True


def plotly_json(fig):
    """A figure as plain JSON (numpy arrays become lists)."""
    if type(fig).__module__.startswith("plotly"):
        try:
            import plotly.io as pio

            return json.loads(pio.to_json(fig, validate=False))
        except Exception:
            pass
    raw = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig
    return json.loads(json.dumps(raw, default=_json_default))


_plot_ids = itertools.count(1)


def plotly_html(spec):
    """A text/html fallback drawing the figure with the page's plotly.js (window.Plotly).

    The kernel's renderer may replace this with its own offline fallback that loads plotly.js
    once per page; a frontend with the plotly MIME renderer uses the JSON instead.
    """
    div_id = "farlab-plotly-%d-%d" % (os.getpid(), next(_plot_ids))
    figure = json.dumps(
        {"data": spec.get("data", []), "layout": spec.get("layout", {}), "config": spec.get("config", {})}
    ).replace("</", "<\\/")
    # Like kernel/display/plotly.ts: wait up to 5 s for window.Plotly (an earlier figure may be
    # loading it), then say why nothing is drawn.
    return (
        '<div id="%s" class="farlab-plotly" style="width:100%%;min-height:450px"></div>\n'
        "<script>(function(){var f=%s,tries=0;function draw(){var el=document.getElementById(%s);"
        "if(window.Plotly){window.Plotly.newPlot(el,f.data,f.layout,f.config);return;}"
        "if(++tries<50){setTimeout(draw,100);return;}"
        "if(el)el.textContent='plotly.js is not loaded on this page; the figure needs the plotly renderer.';}"
        "draw();})();</script>" % (div_id, figure, json.dumps(div_id))
    )


def plotly_bundle(fig):
    spec = plotly_json(fig)
    return {
        PLOTLY_MIME: spec,
        "text/html": plotly_html(spec),
        "text/plain": plotly_summary(spec),
    }


def plotly_summary(spec):
    """One line, like kernel/display/plotly.ts: repr(Figure) is the whole JSON and grows with the data."""
    traces = spec.get("data", []) or []
    types = ", ".join(str(trace.get("type", "scatter")) for trace in traces if isinstance(trace, dict))
    title = (spec.get("layout", {}) or {}).get("title")
    if isinstance(title, dict):
        title = title.get("text")
    return "<Plotly figure: %d trace%s (%s)%s>" % (
        len(traces),
        "" if len(traces) == 1 else "s",
        types,
        ' "%s"' % title if title else "",
    )


def _matplotlib_png(fig):
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _is_matplotlib_figure(obj):
    mod = type(obj).__module__
    return mod.startswith("matplotlib.figure") and hasattr(obj, "savefig")


def mime_bundle(obj):
    """(data, metadata) for obj, like IPython's display formatter."""
    data, metadata = {}, {}
    if is_plotly_figure(obj):
        try:
            return plotly_bundle(obj), {}
        except Exception:
            pass  # fall through to the generic path
    if _is_matplotlib_figure(obj):
        return {"image/png": _matplotlib_png(obj), "text/plain": _safe_repr(obj)}, {}
    method = getattr(obj, "_repr_mimebundle_", None)
    if callable(method) and not isinstance(obj, type):
        try:
            got = method(include=None, exclude=None)
        except TypeError:
            got = method()
        except Exception:
            got = None
        if isinstance(got, tuple) and len(got) == 2:
            got, meta = got
            metadata.update(meta or {})
        if isinstance(got, dict):
            data.update({k: _b64(v) if k in _BINARY else v for k, v in got.items()})
    for name, mime in _REPR_METHODS:
        if mime in data or isinstance(obj, type):
            continue
        method = getattr(obj, name, None)
        if not callable(method):
            continue
        try:
            value = method()
        except Exception:
            continue
        if value is None:
            continue
        if isinstance(value, tuple) and len(value) == 2:
            value, meta = value
            if meta:
                metadata[mime] = meta
        data[mime] = _b64(value) if mime in _BINARY else value
    if "text/plain" not in data:
        data["text/plain"] = _safe_repr(obj)
    return data, metadata


# --- the display API -----------------------------------------------------------------------------

_display_ids = itertools.count(1)


def _new_display_id():
    return "farlab-%d-%d" % (os.getpid(), next(_display_ids))


def _publish(data, metadata=None, display_id=None, update=False):
    if update:
        if not display_id:
            raise ValueError("update=True needs a display_id")
        _channel.emit({"type": "update_display", "data": data, "metadata": metadata or {}, "displayId": display_id})
    else:
        message = {"type": "display", "data": data, "metadata": metadata or {}}
        if display_id:
            message["displayId"] = display_id
        _channel.emit(message)


def _raw_bundle(mime, value, text):
    data = {mime: _b64(value) if mime in _BINARY else value}
    data["text/plain"] = text
    return data


class DisplayHandle:
    """A display that updates in place (update_display_data)."""

    def __init__(self, display_id=None):
        self.display_id = display_id or _new_display_id()
        self._shown = False

    def _send(self, data, metadata=None):
        _publish(data, metadata, self.display_id, update=self._shown)
        self._shown = True

    def display(self, obj):
        self._send(*mime_bundle(obj))

    update = display

    def html(self, html):
        self._send(_raw_bundle("text/html", html, "<HTML>"))

    def markdown(self, md):
        self._send(_raw_bundle("text/markdown", md, md))

    def text(self, text):
        self._send({"text/plain": str(text)})

    def raw(self, mime, data, metadata=None):
        self._send(_raw_bundle(mime, data, "<%s>" % mime), metadata)


class Display:
    """`display(obj)` plus display.html(...), .markdown, .latex, .svg, .png, .jpeg, .json, .text,
    .plotly, .raw, .bundle, .clear and .new_display(), mirroring the TypeScript API."""

    def __call__(self, *objs, display_id=None, update=False, raw=False, metadata=None):
        for obj in objs:
            if raw:
                data, meta = dict(obj), dict(metadata or {})
                data.setdefault("text/plain", "")
            else:
                data, meta = mime_bundle(obj)
                meta.update(metadata or {})
            _publish(data, meta, display_id, update)

    def html(self, html):
        _publish(_raw_bundle("text/html", html, "<HTML>"))

    def markdown(self, md):
        _publish(_raw_bundle("text/markdown", md, md))

    def latex(self, tex):
        _publish(_raw_bundle("text/latex", tex, tex))

    def svg(self, svg):
        _publish(_raw_bundle("image/svg+xml", svg, "<SVG>"))

    def png(self, data):
        _publish(_raw_bundle("image/png", data, "<PNG image>"))

    def jpeg(self, data):
        _publish(_raw_bundle("image/jpeg", data, "<JPEG image>"))

    def json(self, value):
        value = json.loads(json.dumps(value, default=_json_default))
        _publish({"application/json": value, "text/plain": json.dumps(value, indent=2)})

    def text(self, text):
        _publish({"text/plain": str(text)})

    def plotly(self, figure):
        _publish(plotly_bundle(figure))

    def raw(self, mime, data, metadata=None):
        _publish(_raw_bundle(mime, data, "<%s>" % mime), metadata)

    def bundle(self, data, metadata=None):
        data = dict(data)
        data.setdefault("text/plain", "")
        _publish(data, metadata)

    def clear(self, wait=False):
        _channel.emit({"type": "clear_output", "wait": bool(wait)})

    def new_display(self):
        return DisplayHandle()

    # camelCase alias, as in the TypeScript API
    newDisplay = new_display


display = Display()
