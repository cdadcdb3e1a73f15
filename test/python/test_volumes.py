"""%volume, %secret, volumes= and secrets= through the real farlab kernel, driven by jupyter_client.

Run by test/volume-magics.test.ts with /usr/bin/python3 (which has Pillow and numpy), JUPYTER_PATH
at a prefix holding the farlab kernelspec, FARLAB_EMBEDDED_AGENT_DIR at a temporary agent data
dir, FARLAB_PYTHON=/usr/bin/python3 for the remote Python runtime, and FARLAB_TEST_TMP at a
scratch dir. No sleeps as synchronisation: every wait is for a message.
"""
import json
import os
import sys
import unittest
import uuid

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_session import TIMEOUT, SharedKernel, describe, of_type, stream_text  # noqa: E402

TMP = os.environ["FARLAB_TEST_TMP"]
AGENT_DIR = os.environ["FARLAB_EMBEDDED_AGENT_DIR"]
# Environment of the kernel (set by the TS wrapper) for --from-env.
FROM_ENV_VALUE = os.environ["FARLAB_TEST_FROM_ENV_VALUE"]
PROMPTED = {"API_TOKEN": "tok-" + uuid.uuid4().hex, "API_USER": "user-" + uuid.uuid4().hex[:12]}

KERNEL = SharedKernel()
setUpModule, tearDownModule = KERNEL.start, KERNEL.close


def all_text(outputs):
    """Everything a frontend would show or store, as one string."""
    return json.dumps([m["content"] for m in outputs])


class Base(unittest.TestCase):
    def ok(self, code, **kwargs):
        reply, outputs = KERNEL.run(code, timeout=2 * TIMEOUT, **kwargs)
        self.assertEqual(reply["status"], "ok", describe(reply, outputs))
        return outputs

    def fails(self, code, ename, pattern=None):
        reply, outputs = KERNEL.run(code)
        self.assertEqual(reply["status"], "error", describe(reply, outputs))
        self.assertEqual(reply["ename"], ename, describe(reply, outputs))
        if pattern:
            self.assertRegex(reply["evalue"], pattern)
        return reply

    def result_text(self, outputs):
        results = of_type(outputs, "execute_result")
        self.assertTrue(results, outputs)
        return results[-1]["data"]["text/plain"]


class TestVolumes(Base):
    def test_put_ls_get_with_progress(self):
        folder = os.path.join(TMP, "notes")
        os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
        for i in range(20):
            with open(os.path.join(folder, "sub" if i % 2 else "", f"n{i}.txt"), "w") as f:
                f.write(f"note {i}\n" * (i + 1))
        self.ok("%volume create notes")
        outputs = self.ok(f"%volume put notes {folder} archive/")
        self.assertIn("uploaded a folder: 20 files", self.result_text(outputs))
        # One progress bar, updated in place, that ends at 100% with a byte rate.
        displays = [c for c in of_type(outputs, "display_data") if c.get("transient", {}).get("display_id")]
        self.assertEqual(len(displays), 1, outputs)
        updates = of_type(outputs, "update_display_data")
        self.assertTrue(updates)
        self.assertRegex(updates[-1]["data"]["text/plain"], r"100% .*B/s")
        listing = self.result_text(self.ok("%volume ls notes archive/notes"))
        self.assertIn("n0.txt", listing)
        self.assertIn("sub/", listing)
        self.assertRegex(self.result_text(self.ok("%volume list")), r"notes\s+\S+ \w*B\s+20\s")
        back = os.path.join(TMP, "notes-back")
        self.ok(f"%volume get notes archive/notes {back}")
        for root, _dirs, files in os.walk(folder):
            for name in files:
                rel = os.path.relpath(os.path.join(root, name), folder)
                with open(os.path.join(folder, rel), "rb") as a, open(os.path.join(back, rel), "rb") as b:
                    self.assertEqual(a.read(), b.read(), rel)
        self.ok("%volume rm notes archive/notes/n0.txt")
        self.fails("%volume rm notes archive/notes", "MagicUsageError", r"-r")
        self.ok("%volume rm notes archive -r")
        self.assertIn("empty", self.result_text(self.ok("%volume ls notes")))

    def test_escapes_and_bad_arguments_are_usage_errors(self):
        self.ok("%volume create guarded")
        local = os.path.join(TMP, "one.txt")
        with open(local, "w") as f:
            f.write("x")
        self.fails(f"%volume put guarded {local} ../../escape.txt", "MagicUsageError", r"leaves the volume")
        self.fails("%volume get guarded /etc/passwd", "MagicUsageError", r"absolute path")
        self.fails("%volume ls guarded ../", "MagicUsageError", r"leaves the volume")
        self.fails("%volume delete guarded", "MagicUsageError", r"--yes")
        self.fails("%volume create Bad_Name", "MagicUsageError", r"not a volume name")
        self.fails("%volume frobnicate x", "MagicUsageError")
        self.fails("%volume ls nosuchvolume", "NotFoundError", r"no volume named 'nosuchvolume'")
        self.assertFalse(os.path.exists(os.path.join(AGENT_DIR, "escape.txt")))
        self.ok("%volume delete guarded --yes")

    def test_cell_writes_into_mounted_volume(self):
        self.ok("%volume create results")
        self.ok(
            "%%remote lang=python volumes=results:/mnt/farlab-results session=writer\n"
            "with open('/mnt/farlab-results/answer.txt', 'w') as f:\n"
            "    f.write('42\\n')"
        )
        self.fails("%volume delete results --yes", "MagicUsageError", r"mounted by session 'writer'")
        local = os.path.join(TMP, "answer.txt")
        self.ok(f"%volume get results answer.txt {local}")
        with open(local) as f:
            self.assertEqual(f.read(), "42\n")
        self.ok("%remote stop writer")
        self.ok("%volume delete results --yes")

    def test_image_pipeline(self):
        """The seed's image pipeline: PNGs into a volume, Pillow + numpy over the mount, results back."""
        inputs = os.path.join(TMP, "pngs")
        os.makedirs(inputs, exist_ok=True)
        rng = np.random.default_rng(7)
        originals = {}
        for i in range(4):
            pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
            originals[f"img{i}.png"] = pixels
            Image.fromarray(pixels).save(os.path.join(inputs, f"img{i}.png"))
        self.ok("%volume create images")
        self.ok(f"%volume put images {inputs} inputs")
        outputs = self.ok(
            "%%remote lang=python volumes=images:/data --fresh\n"
            "import os\n"
            "import numpy as np\n"
            "from PIL import Image\n"
            "def process(src, dst):\n"
            "    rgb = np.asarray(Image.open(src).convert('RGB')).astype(np.int32)\n"
            "    gray = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) // 1000\n"
            "    Image.fromarray((255 - gray).astype(np.uint8), mode='L').save(dst)\n"
            "os.makedirs('/data/outputs', exist_ok=True)\n"
            "for name in sorted(os.listdir('/data/inputs')):\n"
            "    process(f'/data/inputs/{name}', f'/data/outputs/{name}')\n"
            "sorted(os.listdir('/data/outputs'))"
        )
        self.assertIn("img3.png", self.result_text(outputs))
        back = os.path.join(TMP, "processed")
        self.ok(f"%volume get images outputs {back}")
        self.assertEqual(sorted(os.listdir(back)), sorted(originals))
        for name, rgb in originals.items():
            rgb = rgb.astype(np.int32)
            expected = 255 - (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) // 1000
            got = np.asarray(Image.open(os.path.join(back, name)))
            self.assertEqual(got.shape, (24, 32))
            np.testing.assert_array_equal(got, expected.astype(np.uint8))


class TestSecrets(Base):
    def set_by_prompt(self):
        msg_id = KERNEL.execute("%secret set api API_TOKEN API_USER", allow_stdin=True)
        prompts = []
        for _ in PROMPTED:
            request = KERNEL.kc.get_stdin_msg(timeout=TIMEOUT)
            self.assertEqual(request["msg_type"], "input_request")
            self.assertTrue(request["content"]["password"], request)
            prompts.append(request["content"]["prompt"])
            key = "API_TOKEN" if "API_TOKEN" in request["content"]["prompt"] else "API_USER"
            KERNEL.kc.input(PROMPTED[key])
        reply = KERNEL.reply(msg_id)["content"]
        outputs = KERNEL.outputs(msg_id)
        self.assertEqual(reply["status"], "ok", describe(reply, outputs))
        self.assertEqual(len(prompts), 2)
        for value in PROMPTED.values():
            self.assertNotIn(value, all_text(outputs))

    def test_secrets_end_to_end(self):
        self.set_by_prompt()
        self.ok("%secret set fromenv --from-env FARLAB_TEST_FROM_ENV_VALUE")
        listing = self.result_text(self.ok("%secret list"))
        self.assertIn("api", listing)
        self.assertIn("API_TOKEN, API_USER", listing)
        self.assertIn("FARLAB_TEST_FROM_ENV_VALUE", listing)
        for value in [*PROMPTED.values(), FROM_ENV_VALUE]:
            self.assertNotIn(value, listing)

        token = PROMPTED["API_TOKEN"]
        outputs = self.ok(
            "%%remote lang=python secrets=api,fromenv\n"
            "import os, sys, time, hashlib\n"
            "token = os.environ['API_TOKEN']\n"
            "print('token is', token)\n"
            "print('user is', os.environ['API_USER'], file=sys.stderr)\n"
            "print('env value', os.environ['FARLAB_TEST_FROM_ENV_VALUE'])\n"
            # Split across output chunks: half, flush, a pause longer than the agent's coalescing, rest.
            "sys.stdout.write('split ' + token[:7]); sys.stdout.flush(); time.sleep(0.3)\n"
            "sys.stdout.write(token[7:] + ' end\\n'); sys.stdout.flush()\n"
            "os.system('echo native $API_TOKEN')\n"
            "print('digest', hashlib.sha256(token.encode()).hexdigest())"
        )
        text = all_text(outputs)
        for value in [*PROMPTED.values(), FROM_ENV_VALUE]:
            self.assertNotIn(value, text)
        stdout = stream_text(outputs)
        self.assertIn("token is ****", stdout)
        self.assertIn("split **** end", stdout)
        self.assertIn("native ****", stdout)
        self.assertIn("env value ****", stdout)
        self.assertIn("user is ****", stream_text(outputs, "stderr"))
        # The value really was injected: its hash printed remotely matches.
        import hashlib

        self.assertIn("digest " + hashlib.sha256(token.encode()).hexdigest(), stdout)

        # Nowhere in the agent's data directory except the secret store (journal, logs, sessions).
        for root, _dirs, files in os.walk(AGENT_DIR):
            for name in files:
                full = os.path.join(root, name)
                if os.path.relpath(full, AGENT_DIR).startswith("secrets" + os.sep):
                    continue
                with open(full, "rb") as f:
                    data = f.read()
                for value in [*PROMPTED.values(), FROM_ENV_VALUE]:
                    self.assertNotIn(value.encode(), data, full)
        # The store itself: 0600 files in a 0700 folder.
        store = os.path.join(AGENT_DIR, "secrets")
        self.assertEqual(os.stat(store).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(store, "api.json")).st_mode & 0o777, 0o600)

        self.fails("%%remote lang=python secrets=nosuch\n1", "NotFoundError", r"no secret named 'nosuch'")
        self.ok("%secret delete fromenv")
        self.assertNotIn("fromenv", self.result_text(self.ok("%secret list")))
        self.fails("%secret set x --from-env NOT_IN_THE_ENVIRONMENT_XYZ", "MagicUsageError", r"NOT_IN_THE_ENVIRONMENT_XYZ")

    def test_secrets_in_map_output_are_masked(self):
        # %map workers get the session's secret environment; what they print is masked like a cell's.
        self.ok("%secret set mapsec --from-env FARLAB_TEST_FROM_ENV_VALUE")
        self.ok(
            "%%remote lang=python secrets=mapsec session=msec\n"
            "import os, sys, time\n"
            "def reveal(x):\n"
            "    value = os.environ['FARLAB_TEST_FROM_ENV_VALUE']\n"
            "    print('value', x, value)\n"
            # Split across output chunks: half, flush, a pause longer than the agent's coalescing, rest.
            "    sys.stdout.write('split ' + value[:6]); sys.stdout.flush(); time.sleep(0.3)\n"
            "    sys.stdout.write(value[6:] + ' end\\n'); sys.stdout.flush()\n"
            "    return len(value)"
        )
        outputs = self.ok("%map reveal [1, 2] session=msec workers=1")
        self.assertNotIn(FROM_ENV_VALUE, all_text(outputs))
        stdout = stream_text(outputs)
        for x in (1, 2):
            self.assertRegex(stdout, r"(?m)^\[worker \d+\] value %d \*\*\*\*$" % x)
        self.assertEqual(stdout.count("split **** end"), 2, stdout)
        # The value really reached the worker: the results are its length.
        self.assertIn(str(len(FROM_ENV_VALUE)), self.result_text(outputs))


if __name__ == "__main__":
    unittest.main(verbosity=2)
