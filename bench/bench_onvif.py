"""ONVIF request cost: server CPU per request of the running service, for valid and hostile requests.

Starts the real service on the bundled sample (320x240, not streaming, detection off, so the process
does little else), then sends ``--requests`` requests of each kind over real HTTP (one keep-alive
connection), kinds interleaved in ``--rounds`` rounds (A B C ... A B C ...). For each round and kind the
service process's CPU time (``psutil``, user + system) is divided by the number of requests; the table
gives the median and the spread (min..max) over rounds, and each kind's ratio to the baseline
GetSystemDateAndTime (no auth, the cheapest valid operation) measured in the same rounds.

Usage: ``python bench/bench_onvif.py [--requests 200] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "pi_camera_service" / "data" / "carphone_pristine.mp4"
USER, PASSWORD = "bench", "bench-password-123"
ENV = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
       'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl">'
       '{header}<s:Body>{body}</s:Body></s:Envelope>')


def _token() -> str:
    nonce = os.urandom(16)
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + PASSWORD.encode()).digest()).decode()
    return ('<s:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" '
            'xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">'
            f'<wsse:UsernameToken><wsse:Username>{USER}</wsse:Username><wsse:Password>{digest}</wsse:Password>'
            f'<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>'
            '</wsse:UsernameToken></wsse:Security></s:Header>')


KINDS = {
    "GetSystemDateAndTime (baseline, no auth)": lambda: ENV.format(header="", body="<tds:GetSystemDateAndTime/>"),
    "GetProfiles (UsernameToken digest)": lambda: ENV.format(header=_token(), body="<trt:GetProfiles/>"),
    "60 KB of junk (not XML)": lambda: "x" * 60_000,
    "70 KB body (over the limit)": lambda: "<a>" + "x" * 70_000 + "</a>",
    "DOCTYPE entity bomb": lambda: ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                                    + "".join(f'<!ENTITY a{i} "{"&a;" * 10}">' for i in range(8))
                                    + ']><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
                                      "<s:Body>&a7;</s:Body></s:Envelope>"),
    "20,000 nested elements": lambda: "<a>" * 20_000 + "</a>" * 20_000,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = Path(tempfile.mkdtemp(prefix="bench-onvif-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMERA_")}
    env.update({
        "CAMERA_SOURCE": str(SAMPLE), "CAMERA_WIDTH": "320", "CAMERA_HEIGHT": "240", "CAMERA_STREAM_ON_START": "false",
        "CAMERA_DETECTION_ENABLED": "false", "CAMERA_STILLS_ENABLED": "false", "CAMERA_MDNS_ENABLED": "false",
        "CAMERA_ONVIF_DISCOVERY_ENABLED": "false", "CAMERA_HOST": "127.0.0.1", "CAMERA_PORT": str(port),
        "CAMERA_API_KEY": "bench-key-0123456789abcdef", "CAMERA_STATE_DIR": str(work / "state"),
        "CAMERA_ONVIF_USERNAME": USER, "CAMERA_ONVIF_PASSWORD": PASSWORD, "CAMERA_LOG_LEVEL": "WARNING",
    })
    log = open(work / "service.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pi_camera_service"], env=env, cwd=work, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/onvif/device_service"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"service did not start; see {work / 'service.log'}")
            time.sleep(0.2)
        server = psutil.Process(proc.pid)
        per_kind: dict[str, list[float]] = {k: [] for k in KINDS}
        statuses: dict[str, set[int]] = {k: set() for k in KINDS}
        with httpx.Client(timeout=30) as client:
            for _ in range(args.rounds):
                for kind, make in KINDS.items():
                    bodies = [make() for _ in range(args.requests)]
                    before = server.cpu_times()
                    for body in bodies:
                        statuses[kind].add(client.post(url, content=body).status_code)
                    after = server.cpu_times()
                    cpu = (after.user - before.user) + (after.system - before.system)
                    per_kind[kind].append(cpu / args.requests * 1000)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.rounds} rounds x {args.requests} requests")
        base = statistics.median(per_kind[next(iter(KINDS))])
        print("| request | HTTP status | server CPU per request, ms: median (min..max) | / baseline |")
        print("| --- | --- | --- | --- |")
        for kind, values in per_kind.items():
            med = statistics.median(values)
            print(f"| {kind} | {', '.join(map(str, sorted(statuses[kind])))} | {med:.3f} "
                  f"({min(values):.3f}..{max(values):.3f}) | {med / base:.2f} |")
        print(f"RSS of the service after the run: {server.memory_info().rss / 2**20:.0f} MB")
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


if __name__ == "__main__":
    main()
