"""Why a scenario does not fit: one explanation for every front end (estimate, predict, the pages).

First the layout (tp beyond the attention heads, pp beyond the layers, ep beyond the experts, a request
beyond the context window: llmcap.estimate.resolve.layer_check), then memory: the weights with the
runtime's activations and overhead against the usable memory, else one sequence's KV cache against the room left.
"""

from __future__ import annotations

from llmcap.estimate.resolve import layer_check
from llmcap.estimate.sweep import SweepResult
from llmcap.model.architecture import Architecture
from llmcap.perf.memory import GB
from llmcap.scenario import Scenario


def not_fit_message(scn: Scenario, arch: Architecture, res: SweepResult, j: int = 0) -> str:
    """The reason row `j` of a sweep result (the scenario `scn` of model `arch`) does not fit, in one line."""
    problem = layer_check(arch, scn)
    if problem:
        return problem
    capacity_gb, reserved_gb = float(res.capacity_bytes[j]) / GB, float(res.reserved_bytes[j]) / GB
    weights_gb, activations_gb = float(res.weights_bytes[j]) / GB, float(res.activation_bytes[j]) / GB
    overhead_gb = float(res.overhead_bytes[j]) / GB
    kv_seq_gb, room_gb = float(res.kv_bytes_per_seq[j]) / GB, float(res.kv_room_bytes[j]) / GB
    overflow_gb = max(kv_seq_gb - room_gb, 0.0)
    usable = capacity_gb - reserved_gb
    if weights_gb + activations_gb + overhead_gb >= usable:
        return (
            f"weights need {weights_gb:.1f} GB per device but only {usable:.1f} GB is usable "
            f"({activations_gb:.1f} GB activations and {overhead_gb:.1f} GB runtime also needed); "
            f"short by {overflow_gb:.1f} GB per device"
        )
    return (
        f"one sequence of {scn.input_len + scn.output_len} tokens needs {kv_seq_gb:.2f} GB of KV cache "
        f"per device; {max(room_gb, 0.0):.2f} GB is left; short by {overflow_gb:.2f} GB per device"
    )
