"""README.md's API quick reference, run with the real curl (and jq) against the real service on the sample.

The ``bash`` block under "## API quick reference" is parsed from README.md: every line that is not
marked ``# Pi camera only`` or ``# central server only`` must answer 2xx on the sample video; the
marked ones must answer 409 (so the marks stay true). ``$KEY``, ``$PASS`` and ``$TOKEN`` are real
shell variables; ``<id>`` becomes the id of the still the ``POST /v1/stills`` example took; streams
(``-N``, MJPEG) are cut after a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from pi_camera_service.auth import hash_password
from tests.support.net import wait_until
from tests.support.paths import ROOT
from tests.support.processes import ServiceProcess, sample_camera_env

KEY = "readme-example-key-0123456789abcdef"
PASS = "readme-password-correct-horse"
MARKS = ("# Pi camera only", "# central server only")


def readme_examples() -> list[str]:
    """The logical lines (continuations joined) of README's API quick-reference bash block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## API quick reference", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines, current = [], ""
    for raw in block.splitlines():
        current += raw.rstrip("\\").rstrip() + " " if raw.endswith("\\") else raw
        if not raw.endswith("\\"):
            if "curl " in current:
                lines.append(" ".join(current.split()))
            current = ""
    return lines


def _strip_comment(line: str) -> tuple[str, str]:
    m = re.search(r"\s#\s.*$", line)
    return (line[: m.start()], m.group(0).strip()) if m else (line, "")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("readme")
    # the default main size (1280x720): the examples are written for the default set-up
    env = sample_camera_env(workdir, KEY, CAMERA_PASSWORD_HASH=hash_password(PASS), CAMERA_MDNS_ENABLED="false",
                            CAMERA_WIDTH="1280", CAMERA_HEIGHT="720",
                            CAMERA_DETECTION_FPS="2")
    svc = ServiceProcess(env, workdir / "service.log").start()
    # as a user would run them: once the service has analysed its first frame (before that,
    # /v1/detection/latest answers 503 with Retry-After, as README says)
    wait_until(lambda: httpx.get(svc.base + "/v1/detection/latest", headers={"X-API-Key": KEY}).status_code == 200,
               60, 0.2, "the first analysed frame")
    yield svc
    svc.stop()


@pytest.mark.e2e
def test_readme_quick_examples_work_on_the_sample(service, tmp_path):
    if not (shutil.which("curl") and shutil.which("jq")):
        pytest.fail("curl and jq are needed (apt-get install curl jq; test.sh installs them)")
    examples = readme_examples()
    assert len(examples) >= 25, examples  # the block was found and parsed
    base = service.base
    env = {**os.environ, "KEY": KEY, "PASS": PASS}
    still_id = None
    results = []
    for example in examples:
        command, comment = _strip_comment(example)
        command = command.replace("http://localhost:8000", base)
        if "<id>" in command:
            assert still_id, "the POST /v1/stills example must come before the ones using <id>"
            command = command.replace("<id>", still_id)
        assignment = re.match(r"^(\w+)=\$\((.*)\)$", command)
        if assignment:  # TOKEN=$(curl ... | jq ...): run it and keep the variable
            out = subprocess.run(["bash", "-c", assignment.group(2)], env=env, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=30)
            value = out.stdout.strip()
            assert out.returncode == 0 and value and value != "null", (example, out)
            env[assignment.group(1)] = value
            results.append((example, "set"))
            continue
        (tmp_path / "body.out").unlink(missing_ok=True)
        streaming = " -N " in command or "/mjpeg" in command
        probe = command + f" -sS --max-time {3 if streaming else 30} -w '%{{stderr}}HTTP %{{http_code}}\\n'"
        if " -o " not in command and "-N" not in command and "/mjpeg" not in command:
            probe += " -o body.out"
        out = subprocess.run(["bash", "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        codes = re.findall(r"HTTP (\d{3})", out.stderr)
        assert codes, (example, out.stderr)
        code = int(codes[-1])
        if streaming:
            assert out.returncode in (0, 28), (example, out.returncode, out.stderr)  # 28: cut by --max-time
        body = (tmp_path / "body.out").read_text(errors="replace") if (tmp_path / "body.out").exists() else ""
        if command.rstrip().endswith("/v1/stills") and "-X POST" in command and 200 <= code < 300:
            still_id = json.loads(body)["id"]
        results.append((example, code))
        if any(mark in comment for mark in MARKS):
            assert code == 409, f"{example}\n-> {code} {body}: marked as not working on the sample"
        else:
            assert 200 <= code < 300, f"{example}\n-> {code} {body}"
    assert any("Bearer $TOKEN" in e and c == 200 for e, c in results), results
