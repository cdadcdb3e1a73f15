"""%%remote on the Docker backend through the real farlab kernel, driven by jupyter_client.

Run by test/docker-kernel.test.ts with FARLAB_AGENT_BACKEND=docker and FARLAB_DOCKER_IMAGE set to
the test image (built by test/images/build.sh; the embedded agent inherits the kernel's
environment). The node side checks afterwards that the kernel's shutdown removed the containers.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_session import SharedKernel, stream_text  # noqa: E402

IMAGE = os.environ.get("FARLAB_DOCKER_IMAGE", "farlab-test:latest")
KERNEL = SharedKernel()
setUpModule, tearDownModule = KERNEL.start, KERNEL.close


class DockerCellTestCase(unittest.TestCase):
    def ok(self, code):
        reply, outputs = KERNEL.run(code)
        self.assertEqual(reply["status"], "ok", json.dumps([(m["msg_type"], m["content"]) for m in outputs])[:3000])
        return outputs

    def test_1_status_names_the_docker_backend(self):
        outputs = self.ok("%remote status")
        results = [m["content"]["data"] for m in outputs if m["msg_type"] == "execute_result"]
        self.assertTrue(results, outputs)
        self.assertIn("backend docker", results[-1]["text/plain"])

    def test_2_python_state_in_a_container(self):
        self.ok(f"%%remote lang=python image={IMAGE}\nimport pandas\nx = 6 * 7")
        outputs = self.ok(f"%%remote lang=python image={IMAGE}\nprint(x, open('/proc/1/cmdline').read().split(chr(0))[0])")
        text = stream_text(outputs)
        self.assertTrue(text.startswith("42 "), text)
        # PID 1 is docker-init (Init: true), not the host's init: the cell ran in a container.
        self.assertIn("init", text)
        # ...labelled with the embedded agent's data dir (what the node side checks is gone later).
        label = "farlab.data-dir=" + os.path.realpath(os.environ["FARLAB_EMBEDDED_AGENT_DIR"])
        listed = subprocess.run(["docker", "ps", "-q", "--filter", "label=" + label], capture_output=True, text=True, check=True)
        self.assertTrue(listed.stdout.strip(), f"no running container labelled {label}")

    def test_3_typescript_state_in_the_default_image(self):
        self.ok("%%remote lang=ts\nconst greeting: string = 'hi from ' + process.version;")
        self.assertIn("hi from v", stream_text(self.ok("%%remote lang=ts\nconsole.log(greeting)")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
