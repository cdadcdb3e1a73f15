"""Executes one notebook with nbclient (Debian's python3-nbclient) through a named kernel, as
Jupyter's own tooling (nbconvert --execute, papermill) does, and writes the executed notebook.

usage: run_notebook.py NOTEBOOK OUTPUT [--kernel farlab] [--cwd DIR] [--cell-timeout SECONDS]

Execution stops at the first cell that fails, except cells tagged `raises-exception` (nbclient's
rule); the notebook is written in every case, with what ran, so that the caller can name the
failing cell from its outputs. Exit status: 0 when every cell ran, 1 when a cell failed or timed
out, 2 when the kernel could not be started or died. The last line of stdout is a JSON summary:
{"seconds": total, "cells": [[index, seconds], ...]} (the time each code cell took).
"""
import argparse
import json
import sys
import time
from datetime import datetime

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError


def cell_seconds(cell):
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return round((parse(end) - parse(start)).total_seconds(), 2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--kernel", default="farlab")
    parser.add_argument("--cwd", default=None, help="the kernel's working folder (default: the notebook's)")
    parser.add_argument("--cell-timeout", type=int, default=240)
    args = parser.parse_args()

    notebook = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=args.kernel,
        timeout=args.cell_timeout,
        startup_timeout=120,
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": args.cwd or "."}},
    )
    status = 0
    started = time.monotonic()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as error:
        print(f"cell failed: {str(error)[:4000]}", file=sys.stderr)
        status = 1
    except (DeadKernelError, RuntimeError) as error:
        print(f"kernel failed: {type(error).__name__}: {error}", file=sys.stderr)
        status = 2
    finally:
        nbformat.write(notebook, args.output)
    cells = [[i, cell_seconds(c)] for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    print(json.dumps({"seconds": round(time.monotonic() - started, 2), "cells": cells}))
    return status


if __name__ == "__main__":
    sys.exit(main())
