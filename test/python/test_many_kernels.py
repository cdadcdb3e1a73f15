"""8 farlab kernels, 50 remote cells each, at once, against one ZeroMQ agent.

Run by test/remote-many-kernels.test.ts with /usr/bin/python3; agents.json in FARLAB_CONFIG_DIR
makes the shared agent the default, so the cells are plain `%%remote lang=sh`. Each cell prints
lines naming its kernel and cell; every cell must get exactly its own lines (none lost, none from
another kernel). Prints one JSON line with the result.
"""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_session import KernelSession  # noqa: E402

KERNELS = int(os.environ.get("FARLAB_T_KERNELS", "8"))
CELLS = int(os.environ.get("FARLAB_T_CELLS", "50"))


def drive(k, problems, counts):
    try:
        kernel = KernelSession()
    except Exception as error:  # noqa: BLE001
        problems.append(f"kernel {k} did not start: {error}")
        return
    try:
        for c in range(CELLS):
            reply, outputs = kernel.run(f"%%remote lang=sh\necho k{k}-c{c}-a\necho k{k}-c{c}-b", timeout=120)
            text = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
            if reply["status"] != "ok" or text != f"k{k}-c{c}-a\nk{k}-c{c}-b\n":
                problems.append(f"kernel {k} cell {c}: status {reply['status']} stdout {text!r} {reply.get('evalue', '')}")
            else:
                counts[k] += 1
    finally:
        kernel.close()


def main():
    problems = []
    counts = [0] * KERNELS
    threads = [threading.Thread(target=drive, args=(k, problems, counts)) for k in range(KERNELS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"counts": counts, "problems": problems[:20]}), flush=True)


if __name__ == "__main__":
    main()
