"""The jobs app's own job type: ``jobs.selftest`` counts through steps with progress. It checks that a worker
runs jobs end to end (``manage.py job_selftest``) and is what the tests kill a worker under."""
from __future__ import annotations

import time
from typing import Any

from .runner import JobContext, job_task, undo_step


@undo_step("jobs.selftest_undo")
def _selftest_undo(params: dict[str, Any]) -> str | None:
    return f"nothing real to undo for step {params.get('step')}"


@job_task("jobs.selftest")
def selftest(ctx: JobContext) -> dict[str, Any]:
    steps = max(1, min(int(ctx.params.get("steps", 5)), 600))
    pause = max(0.0, min(float(ctx.params.get("pause", 0.1)), 5.0))
    for step in range(1, steps + 1):
        ctx.check_cancelled()
        if step == 1:
            ctx.undo("jobs.selftest_undo", "the self-test's first step", step=step)
        if ctx.params.get("fail_at") == step:
            raise RuntimeError(f"asked to fail at step {step}")
        time.sleep(pause)
        ctx.progress(step * 100 // steps, f"step {step} of {steps}")
    return {"steps": steps}
