"""Runs every benchmark in bench/ (files named *_bench.py) and prints their tables. `make bench` calls this."""
from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    cores = sum(1 for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("processor"))
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{platform.node()}: {cpu}, {cores} cores, {mem} GiB RAM, {platform.system()} {platform.release()}"


def main() -> int:
    only = sys.argv[1:]
    print(f"Machine: {machine()}")
    failed = 0
    for script in sorted(HERE.glob("*_bench.py")):
        if only and not any(o in script.name for o in only):
            continue
        print(f"\n## {script.stem}", flush=True)
        failed += subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
