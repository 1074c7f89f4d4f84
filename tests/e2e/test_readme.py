"""The README's shell examples, run as written against the e2e stack, so the docs cannot drift."""

import re
import subprocess

import pytest

from tests.e2e.conftest import ROOT

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
# Blocks that build, stop or test the whole stack are what the fixtures already do; the load, chaos and
# experiment targets run for minutes and have their own tests (test_experiment.py), and so do the key
# rotation (test_jwt_operations.py) and the soak (test_soak.py).
RUNNABLE = [b for b in BLOCKS
            if not re.search(r"make (up|down|test|load|chaos|kill-node|experiment|rotate-jwt-key|soak)\b", b)]

# What each example must print, found by a line the block contains.
EXPECT = {
    "/api/redis/login": '"items": ["apple"]',
    "/api/$s/login": '{"strategy":"cluster-wait","items":["apple"]',
    "/api/jwt/login": '"items":["apple"]',
    "/api/client/login": '"items":["apple"]',
    "/api/none/cart": '"items": []',
    "/api/memory/login": '"items": ["pear"]',
    "/api/replicated/login": '"items":["plum"]',
    "grep -i x-served-by": "X-Served-By: app",
    "docker compose kill app2": "Healthy",
}


def test_every_example_is_checked():
    assert len(RUNNABLE) == len(EXPECT), "a README example has no expectation here (or one went away)"


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.strip().splitlines()[0][:40])
def test_readme_example(lab, tmp_path, block):
    script = block.replace("http://127.0.0.1:8080", lab.url).replace("make lb", f"make -s -C {ROOT} lb")
    env = lab.tool_env()
    env.pop("MAKEFLAGS", None)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    expected = [text for marker, text in EXPECT.items() if marker in block]
    assert expected, "no expectation for this example"
    output = done.stdout + done.stderr
    for text in expected:
        assert text in output, f"expected {text!r} in:\n{output}"
    assert '"error"' not in done.stdout, done.stdout
