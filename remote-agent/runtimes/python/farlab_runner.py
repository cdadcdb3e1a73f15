"""farlab's Python runtime: one session's interpreter, driven by the agent over FARLAB_CHANNEL.

Stdlib only (Python >= 3.8); runs with any python3 (the Docker backend mounts this folder into
an arbitrary image). The protocol is remote-agent/protocol/runner.ts.
"""
import os
import sys

# Before anything can import matplotlib: render off-screen (child processes inherit this). In this
# process farlab/_mpl_hook.py then selects farlab.matplotlib_backend, so plt.show() and the figures
# left open at the end of a cell become image/png displays.
os.environ["MPLBACKEND"] = "Agg"

# This folder may be a read-only mount (Docker backend) or the source tree: no __pycache__ in it.
sys.dont_write_bytecode = True

_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    # Cells should import from the session's working directory, not from the runner's folder.
    sys.path[0] = os.getcwd()
sys.path.insert(1, _HERE)

from farlab import _mpl_hook  # noqa: E402
from farlab._runtime import main  # noqa: E402

_mpl_hook.install()

if __name__ == "__main__":
    sys.exit(main())
