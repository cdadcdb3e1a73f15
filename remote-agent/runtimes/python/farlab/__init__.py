"""farlab for Python cells on a farlab agent: `from farlab import display, progress`."""
from ._display import DisplayHandle, display, mime_bundle
from ._progress import progress

__all__ = ["display", "progress", "DisplayHandle", "mime_bundle"]
