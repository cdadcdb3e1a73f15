"""Select farlab's matplotlib backend in this process only.

MPLBACKEND=Agg stays in the environment (child processes inherit it and render off-screen).
When a cell first imports matplotlib, this one-shot import hook sets the backend of *this*
process to farlab.matplotlib_backend, so plt.show() displays figures instead of warning.
"""
import importlib.abc
import importlib.util
import sys

BACKEND = "module://farlab.matplotlib_backend"


class _MatplotlibHook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "matplotlib":
            return None
        sys.meta_path.remove(self)  # one shot; also keeps find_spec below from recursing
        spec = importlib.util.find_spec("matplotlib")
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module):
            original(module)
            try:
                module.rcParams["backend"] = BACKEND
            except Exception:
                pass  # an unusual matplotlib: stay on Agg; figures are still shown at cell end

        loader.exec_module = exec_module
        return spec


def install():
    if "matplotlib" not in sys.modules:
        sys.meta_path.insert(0, _MatplotlibHook())
