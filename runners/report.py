"""What a dry run prints: the plan of a job, read from footers and small artifacts, and the
stage graph of its pipeline."""

from __future__ import annotations

import apache_beam as beam

from tamis.runners.jobs.base import Job, Plan
from tamis.storage import manifest as mf
from tamis.storage.files import join


def dry_run_report(job: Job, config_label: str, config_hash: str, output: str, runner: str,
                   plan: Plan, pipeline: beam.Pipeline, output_state: str = "new") -> str:
    inputs, est = plan.inputs, plan.estimates
    lines = [
        f"tamis {job.name}: dry run (reads footers and small artifacts only; writes nothing)",
        f"config: {config_label} ({config_hash})",
        f"runner: {runner}",
    ]
    if inputs is not None:
        lines.append(f"inputs: {len(inputs.files)} files, {number(inputs.rows)} rows, "
                     f"{size(inputs.bytes)}, ~{number(est.input_tokens)} tokens (estimated)")
        for f in inputs.files[:20]:
            groups = sum(1 for u in inputs.units if inputs.files[u.file] is f)
            lines.append(f"  {f.rel}  {f.format}  {number(f.rows)} rows  {size(f.bytes)}  "
                         f"{groups} unit(s)")
        if len(inputs.files) > 20:
            lines.append(f"  ... and {len(inputs.files) - 20} more")
    lines += plan.summary
    lines.append(
        f"expected output: ~{number(est.output_rows)} rows, ~{number(est.output_tokens)} "
        f"tokens, ~{size(est.output_bytes)} in {est.num_shards} shard(s) under "
        f"{join(output, mf.DATA)}")
    lines.append(f"output folder: {output}: {output_state}")
    if inputs is not None and inputs.skipped:
        lines.append(f"skipped: {len(inputs.skipped)} file(s) under the inputs")
        lines += [f"  {s.path}: {s.reason}" for s in inputs.skipped[:20]]
        if len(inputs.skipped) > 20:
            lines.append(f"  ... and {len(inputs.skipped) - 20} more")
    lines += [f"warning: {warning}" for warning in plan.warnings]
    if output_state.startswith(("NOT EMPTY", "holds")):
        lines.append(f"warning: output folder {output} "
                     + ("is not empty: a run stops there unless --overwrite is given"
                        if output_state.startswith("NOT EMPTY") else output_state))
    lines.append("stages:")
    lines += stage_graph(pipeline)
    return "\n".join(lines)


def stage_graph(pipeline: beam.Pipeline, depth: int = 2) -> list[str]:
    """The labelled steps of ``pipeline``, composites first, ``depth`` levels deep."""
    lines: list[str] = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def _line(self, node, level: int) -> None:
            if 1 <= level <= depth:
                lines.append("  " * level + node.full_label.rsplit("/", 1)[-1])

        def enter_composite_transform(self, node) -> None:
            self._line(node, node.full_label.count("/") + 1 if node.full_label else 0)

        def visit_transform(self, node) -> None:
            self._line(node, node.full_label.count("/") + 1)

    pipeline.visit(Visitor())
    return lines


def reasons(counts: dict[str, int]) -> str:
    if not counts:
        return "0"
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items()))


def number(value) -> str:
    return "?" if value is None else f"{value:,}"


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
