"""Runs every benchmark in bench/ (files named *_bench.py), prints their tables and writes docs/benchmarks.md with the
date, the machine and each benchmark's own description and output. `make bench` calls this.

    .venv/bin/python bench/run.py                 # all, and rewrite docs/benchmarks.md
    .venv/bin/python bench/run.py clone console   # only those whose file name contains these words (their
                                                  # sections of the page replaced, the others kept)
"""
from __future__ import annotations

import ast
import datetime
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE.parent / "docs" / "benchmarks.md"

INTRO = """# Benchmarks

This page is written by `make bench` (`bench/run.py`): every figure stands beside a baseline measured in the same
run, on the same machine — the command-line tool the portal stands for, or the plain component it builds on. Ratios
from one run say more than single figures, which move from run to run on a busy machine. Tests never assert a time:
speed lives here.

```sh
make bench                                    # every benchmark in bench/ (files named *_bench.py); rewrites this page
.venv/bin/python bench/run.py clone console   # only those whose file name contains these words
```

`make bench` runs the test setup first (see [testing.md](testing.md)): the benchmarks use real libvirt, Chromium and
`virt-install`. Every object a benchmark makes in libvirt is named `kvmwebbench-…` (or lives in a temporary pool of
its own) and is removed at the end.
"""


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
               platform.processor())
    cores = sum(1 for line in cpuinfo if line.startswith("processor"))
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{platform.node()}: {cpu}, {cores} cores, {mem} GiB RAM, {platform.system()} {platform.release()}"


def versions() -> str:
    def first_line(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    return (f"libvirt {first_line(['virsh', '--version'])}, {first_line(['qemu-system-x86_64', '--version'])}, "
            f"Python {platform.python_version()}")


def description(script: Path) -> str:
    return (ast.get_docstring(ast.parse(script.read_text())) or "").strip()


def run(script: Path) -> tuple[int, str]:
    """Run one benchmark, showing its output as it comes, and keep it."""
    proc = subprocess.Popen([sys.executable, str(script)], cwd=HERE.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    return proc.wait(), "".join(lines)


def main() -> int:
    only = sys.argv[1:]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = machine()
    print(f"Machine: {where}\n{versions()}")
    sections, failed = [], 0
    for script in sorted(HERE.glob("*_bench.py")):
        if only and not any(o in script.name for o in only):
            continue
        print(f"\n## {script.stem}", flush=True)
        code, output = run(script)
        failed += code != 0
        status = "" if code == 0 else f"\n**This benchmark failed (exit code {code}).**\n"
        sections.append(f"## {script.stem} (`bench/{script.name}`)\n\n{description(script)}\n{status}\n"
                        f"```\n{output.rstrip()}\n```\n")
    if not only:
        PAGE.write_text(f"{INTRO}\n## The run of {when}\n\nMachine: {where}.\n{versions()}.\n\n" + "\n".join(sections))
        print(f"\nwrote {PAGE}")
    elif sections and PAGE.exists():
        PAGE.write_text(splice(PAGE.read_text(), sections, when))
        print(f"\nupdated {len(sections)} section(s) of {PAGE}")
    return 1 if failed else 0


def splice(page: str, sections: list[str], when: str) -> str:
    """The page with these benchmarks' sections replaced (or added at the end), each marked with its own run's
    date: a partial run keeps the other benchmarks' figures."""
    for section in sections:
        heading = section.split("\n", 1)[0]
        body = section.replace("\n", f"\n\n(run of {when}, alone)\n", 1)
        start = page.find(heading + "\n")
        if start < 0:
            page = page.rstrip("\n") + "\n\n" + body
            continue
        end = page.find("\n## ", start + len(heading))
        page = page[:start] + body.rstrip("\n") + "\n" + ("" if end < 0 else "\n" + page[end + 1:])
    return page


if __name__ == "__main__":
    sys.exit(main())
