"""%remote connect, named agents, reconnects and %remote attach through the real farlab kernel.

Run by test/remote-agents.test.ts with /usr/bin/python3. The environment names the agents the
test started (FARLAB_T_* variables), HOME is a scratch folder (its .ssh holds the login key and
the known_hosts these tests write), FARLAB_CONFIG_DIR is a scratch config folder (client keys,
agents.json). To cut the link between kernel and agent, the driver prints "CUT" on stdout and
waits for the test to answer "CUT-DONE" on stdin (the TCP proxy lives in the test process).

No sleeps as synchronisation: every wait is for a message (with a generous bound).
"""
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_session import SharedKernel  # noqa: E402

ENV = os.environ
HOME = ENV["HOME"]
CONFIG = ENV["FARLAB_CONFIG_DIR"]
TMP = ENV["FARLAB_TEST_TMP"]
KNOWN_HOSTS = os.path.join(HOME, ".ssh", "known_hosts")
LINES = 200
CUT_AFTER = [30, 60, 90]

KERNEL = SharedKernel()
setUpModule, tearDownModule = KERNEL.start, KERNEL.close


def of_type(outputs, *types):
    return [m for m in outputs if m["msg_type"] in types]


def stdout_of(outputs):
    return "".join(m["content"]["text"] for m in of_type(outputs, "stream") if m["content"]["name"] == "stdout")


def display_texts(outputs):
    return [m["content"]["data"].get("text/plain", "") for m in of_type(outputs, "display_data", "update_display_data")]


def cut_link():
    print("CUT", flush=True)
    answer = sys.stdin.readline().strip()
    assert answer == "CUT-DONE", answer


def numbered_lines(count, release):
    return "\n".join(
        [
            "import os, time",
            f"for i in range(1, {count + 1}):",
            '    print(f"line {i}", flush=True)',
            "    time.sleep(0.005)",
            f"while not os.path.exists({release!r}):",
            "    time.sleep(0.02)",
            'print("the end", flush=True)',
        ]
    )


def expected_lines(count):
    return "".join(f"line {i}\n" for i in range(1, count + 1)) + "the end\n"


class TestRemoteAgents(unittest.TestCase):
    def run_cell(self, code, timeout=120):
        return KERNEL.run(code, timeout=timeout)

    def ok(self, code, timeout=120):
        reply, outputs = self.run_cell(code, timeout)
        self.assertEqual(reply["status"], "ok", json.dumps([reply, [(m["msg_type"], m["content"]) for m in outputs]])[:3000])
        return outputs

    def fails(self, code, ename):
        reply, outputs = self.run_cell(code)
        self.assertEqual(reply["status"], "error", json.dumps([reply, [(m["msg_type"], m["content"]) for m in outputs]])[:3000])
        errors = [m["content"] for m in of_type(outputs, "error")]
        self.assertTrue(errors)
        self.assertEqual(errors[-1]["ename"], ename, errors[-1])
        return errors[-1]

    def test_1_unauthorized_curve_key_is_a_clear_error_in_the_cell(self):
        error = self.fails(f"%remote connect {ENV['FARLAB_T_UNAUTH_URL']} server_key={ENV['FARLAB_T_UNAUTH_KEY']}", "AgentAuthError")
        self.assertIn("refused this client's key", error["evalue"])
        self.assertIn("farlab-agent authorize", error["evalue"])

    def test_2_unknown_ssh_host_is_refused_in_the_cell(self):
        if os.path.exists(KNOWN_HOSTS):
            os.remove(KNOWN_HOSTS)
        error = self.fails(f"%remote connect {ENV['FARLAB_T_SSH_URL']} command={ENV['FARLAB_T_SSH_COMMAND']}", "HostKeyError")
        self.assertIn("is not known", error["evalue"])
        self.assertIn("--trust-new-host", error["evalue"])

    def test_3_changed_ssh_host_key_is_refused_in_the_cell(self):
        with open(KNOWN_HOSTS, "w") as f:
            f.write(ENV["FARLAB_T_SSH_OTHER_KEY_LINE"] + "\n")
        error = self.fails(
            f"%remote connect {ENV['FARLAB_T_SSH_URL']} command={ENV['FARLAB_T_SSH_COMMAND']} --trust-new-host", "HostKeyError"
        )
        self.assertIn("CHANGED", error["evalue"])
        os.remove(KNOWN_HOSTS)

    def test_4_trust_new_host_connects_and_runs_a_cell_over_ssh(self):
        outputs = self.ok(f"%remote connect {ENV['FARLAB_T_SSH_URL']} command={ENV['FARLAB_T_SSH_COMMAND']} name=lab --trust-new-host")
        self.assertIn("connected to agent 'lab'", json.dumps([m["content"] for m in outputs]))
        self.assertTrue(os.path.exists(KNOWN_HOSTS), "the host key was recorded")
        self.assertEqual(stdout_of(self.ok("%%remote agent=lab lang=sh\necho over-ssh")), "over-ssh\n")

    def test_5_a_malformed_agents_json_is_a_clear_error_naming_the_file(self):
        path = os.path.join(CONFIG, "agents.json")
        with open(path) as f:
            kept = f.read()
        self.assertIn('"lab"', kept, "connect name=lab kept the agent in agents.json")
        try:
            with open(path, "w") as f:
                f.write('{"agents": {"gpu": {"url": "http://nope"}}}')
            error = self.fails("%remote status", "AgentConfigError")
            self.assertIn(path, error["evalue"])
        finally:
            with open(path, "w") as f:
                f.write(kept)

    def test_6_zeromq_default_agent_reconnects_and_loses_no_line(self):
        self.ok(f"%remote connect {ENV['FARLAB_T_ZMQ_URL']} server_key={ENV['FARLAB_T_ZMQ_KEY']} name=gpu --default")
        release = os.path.join(TMP, "release-kernel")
        msg_id = KERNEL.execute(f"%%remote lang=python\n{numbered_lines(LINES, release)}")
        reconnected = 0
        for threshold in CUT_AFTER:
            KERNEL.wait_iopub(
                msg_id, lambda m, t=threshold: f"line {t}\n" in stdout_of(KERNEL.iopub[msg_id]), timeout=120, what=f"line {threshold}"
            )
            cut_link()
            reconnected += 1
            KERNEL.wait_iopub(
                msg_id,
                lambda m, n=reconnected: sum("reconnected to gpu" in t for t in display_texts(KERNEL.iopub[msg_id])) >= n,
                timeout=120,
                what=f"reconnect {reconnected}",
            )
        open(release, "w").close()
        reply = KERNEL.reply(msg_id, timeout=120)
        outputs = KERNEL.outputs(msg_id, timeout=120)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertEqual(stdout_of(outputs), expected_lines(LINES), "every line exactly once, in order")
        texts = display_texts(outputs)
        self.assertTrue(any(t.startswith("reconnecting to gpu (attempt 1") for t in texts), texts)
        # The status line is one display, updated in place.
        links = [m for m in of_type(outputs, "display_data", "update_display_data") if "reconnect" in m["content"]["data"].get("text/plain", "")]
        self.assertEqual(links[0]["msg_type"], "display_data")
        self.assertTrue(all(m["msg_type"] == "update_display_data" for m in links[1:]))
        self.assertEqual(len({m["content"]["transient"]["display_id"] for m in links}), 1)

    def test_7_attach_after_a_kernel_restart_replays_the_whole_output(self):
        release = os.path.join(TMP, "release-attach")
        msg_id = KERNEL.execute(f"%%remote agent=gpu lang=python\n{numbered_lines(30, release)}")
        KERNEL.wait_iopub(msg_id, lambda m: "line 30\n" in stdout_of(KERNEL.iopub[msg_id]), timeout=120, what="line 30")
        KERNEL.km.restart_kernel(now=True)
        KERNEL.kc.wait_for_ready(timeout=120)
        self.ok("0", timeout=240)
        # agent=gpu comes from agents.json now: this kernel never connected it.
        jobs = self.ok("%remote jobs agent=gpu")
        table = json.dumps([m["content"] for m in jobs])
        running = re.findall(r"(job-[a-z0-9]+-[0-9a-f]{6})\s+\S+\s+running", table)
        self.assertEqual(len(running), 1, table)
        attach_id = KERNEL.execute(f"%remote attach {running[0]} agent=gpu")
        KERNEL.wait_iopub(attach_id, lambda m: "line 30\n" in stdout_of(KERNEL.iopub[attach_id]), timeout=120, what="replayed line 30")
        open(release, "w").close()
        reply = KERNEL.reply(attach_id, timeout=120)
        outputs = KERNEL.outputs(attach_id, timeout=120)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertEqual(stdout_of(outputs), expected_lines(30))


if __name__ == "__main__":
    unittest.main(verbosity=2)
