"""A matplotlib backend: Agg rendering, and plt.show() displays the open figures as PNG.

Selected in the runner's process by farlab/_mpl_hook.py (plain Agg would warn that it "cannot
show" figures on plt.show()). Figures still open at the end of a cell are shown then.
"""
from matplotlib.backend_bases import FigureManagerBase, _Backend
from matplotlib.backends.backend_agg import FigureCanvasAgg


def show_open_figures(skip=None):
    """Display every open pyplot figure (but `skip`) as image/png, then close them all."""
    from matplotlib import pyplot
    from matplotlib._pylab_helpers import Gcf

    from ._display import display

    for manager in Gcf.get_all_fig_managers():
        if manager.canvas.figure is not skip:
            display(manager.canvas.figure)
    pyplot.close("all")


@_Backend.export
class _BackendFarlab(_Backend):
    FigureCanvas = FigureCanvasAgg
    FigureManager = FigureManagerBase

    @staticmethod
    def show(*args, **kwargs):
        show_open_figures()
