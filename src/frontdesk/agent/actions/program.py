"""A spec's steps as a flat program: ``if`` and ``wait_for_reply`` become jumps, so a run's
position is one integer that survives restarts."""

from __future__ import annotations

from typing import Any

from frontdesk.adapters.db.action_models import ActionRun
from frontdesk.agent.actions.spec import ActionSpec, IfStep, WaitStep


def compile_steps(steps: list[Any]) -> list[dict[str, Any]]:
    """Flat instructions: ``step`` (do it), ``wait`` (then a jump past its timeout body),
    ``branch`` (to ``else`` when false), ``jump``."""
    program: list[dict[str, Any]] = []

    def emit(items: list[Any]) -> None:
        for step in items:
            if isinstance(step, IfStep):
                branch = {"op": "branch", "when": step.when.model_dump(), "else": -1}
                program.append(branch)
                emit(step.then)
                jump = {"op": "jump", "to": -1}
                program.append(jump)
                branch["else"] = len(program)
                emit(step.otherwise)
                jump["to"] = len(program)
            elif isinstance(step, WaitStep):
                program.append({"op": "wait", "step": step.model_dump(exclude={"on_timeout"})})
                jump = {"op": "jump", "to": -1}
                program.append(jump)
                emit(step.on_timeout)
                program.append({"op": "stop", "outcome": "reply_timeout"})
                jump["to"] = len(program)
            else:
                program.append({"op": "step", "step": step.model_dump()})

    emit(steps)
    return program


def spec_of(run: ActionRun) -> ActionSpec:
    return ActionSpec.model_validate(run.spec)
