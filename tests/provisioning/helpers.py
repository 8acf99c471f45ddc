"""Helpers of the create/upload tests: wait for a job, tell a guest's screen from a flat colour, list the kinds of
devices a domain's XML holds."""
from __future__ import annotations

import struct
import subprocess
import time
import zlib
from collections import Counter

from lxml import etree

from kvmweb.jobs.models import Job


def wait_job(pk: int, *, timeout: float = 90.0, states: tuple[str, ...] = ("succeeded", "failed", "cancelled")) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=pk)
        if job.state in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {pk} still {Job.objects.get(pk=pk).state} after {timeout}s")


def png_distinct_rows(png: bytes) -> int:
    """How many distinct (filtered) scanlines a PNG holds: a flat colour gives one or two, a screen of text many."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, row = 8, b"", 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, _height, depth, colour = struct.unpack(">IIBB", data[:10])
            channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
            row = 1 + (width * channels * depth + 7) // 8
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    return len({raw[i:i + row] for i in range(0, len(raw), row)})


def wait_screen(dom, timeout: float = 30.0) -> bytes:  # type: ignore[no-untyped-def]
    """A screenshot that is not a flat colour (the guest drew something), or fail."""
    deadline = time.monotonic() + timeout
    png = b""
    while time.monotonic() < deadline:
        png = dom.screenshot_png()
        if png_distinct_rows(png) > 4:
            return png
        time.sleep(0.5)
    raise AssertionError("the guest's screen stayed a flat colour")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Terminate a server process the test started; kill it if it does not stop in time."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def device_kinds(xml: str) -> Counter[tuple[str, ...]]:
    """The kinds of devices in a domain's XML, counted: the tag, plus what tells devices of that tag apart (a
    controller's type and model, an input's type and bus, a channel's target name, a video, balloon or rng model,
    else the type attribute). ``<emulator>`` is left out: it is the host's QEMU binary, not a device; libvirt fills
    it in when the domain is defined."""
    root = etree.fromstring(xml.encode())
    kinds: Counter[tuple[str, ...]] = Counter()
    for el in root.find("devices"):
        if not isinstance(el.tag, str) or el.tag == "emulator":
            continue
        tag = str(el.tag)
        if tag == "controller":
            kind: tuple[str, ...] = (tag, el.get("type", ""), el.get("model", ""))
        elif tag == "input":
            kind = (tag, el.get("type", ""), el.get("bus", ""))
        elif tag == "channel":
            kind = (tag, el.find("target").get("name", "") if el.find("target") is not None else "")
        elif tag == "video":
            kind = (tag, el.find("model").get("type", "") if el.find("model") is not None else "")
        elif tag in ("memballoon", "rng"):
            kind = (tag, el.get("model", ""))
        else:
            kind = (tag, el.get("type", ""))
        kinds[kind] += 1
    return kinds


def agent(name: str, command: str, arguments: dict | None = None, *, timeout: int = 5) -> object:  # type: ignore[type-arg]
    """One QEMU guest agent command through libvirt (``virsh qemu-agent-command``): its ``return`` value."""
    import json

    message = {"execute": command, **({"arguments": arguments} if arguments else {})}
    out = subprocess.run(["virsh", "-c", "qemu:///system", "qemu-agent-command", name, json.dumps(message),
                          "--timeout", str(timeout)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["return"]


def wait_agent_hostname(name: str, *, timeout: float = 240.0) -> str:
    """The host name the guest agent reports, once it answers (a cloud guest under TCG: ~25 s after start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return str(agent(name, "guest-get-host-name")["host-name"])  # type: ignore[index]
        except subprocess.CalledProcessError:
            time.sleep(1)
    raise AssertionError(f"the guest agent of {name} did not answer within {timeout:.0f} s")


def guest_run(name: str, path: str, *args: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run a program in the guest through its agent (``guest-exec``): exit code and standard output."""
    import base64

    pid = agent(name, "guest-exec", {"path": path, "arg": list(args), "capture-output": True})["pid"]  # type: ignore[index]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = agent(name, "guest-exec-status", {"pid": pid})
        if status["exited"]:  # type: ignore[index]
            out = base64.b64decode(status.get("out-data", "")).decode()  # type: ignore[union-attr]
            return int(status.get("exitcode", -1)), out  # type: ignore[union-attr]
        time.sleep(0.3)
    raise AssertionError(f"{path} did not end in the guest {name} within {timeout:.0f} s")
