"""Vectorized evaluation over many scenarios: the one path every number goes through.

`evaluate()` takes stacked arrays (a single scenario is arrays of length one) and returns arrays of
memory, fit, closed-loop latency and throughput. `sweep()` builds those arrays from a list of
Scenarios, resolving each distinct (model, hardware, formats, engine) combination once.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
from dataclasses import dataclass, fields

import numpy as np

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.estimate.resolve import Resolved, UnsupportedError, layer_check, resolve, scenario_layout
from llmcap.estimate.serving import Engine, System, closed_loop
from llmcap.perf.memory import kv_bytes_per_sequence, max_concurrency, memory_budget
from llmcap.scenario import Scenario

UNSUPPORTED = "unsupported: "  # prefix of a build_input error the support matrix raised


@dataclass(frozen=True)
class EngineMemory:
    """Engine memory settings (arrays)."""

    memory_fraction: np.ndarray
    fraction_of_free: np.ndarray  # bool
    overhead_gb: np.ndarray


@dataclass(frozen=True)
class SweepInput:
    system: System
    engine: Engine
    engine_memory: EngineMemory
    input_len: np.ndarray
    output_len: np.ndarray
    concurrency: np.ndarray  # total over replicas; np.inf = "max"
    replicas: np.ndarray
    layout_ok: np.ndarray  # bool: the layout can split the model


@dataclass(frozen=True)
class SweepResult:
    """Arrays over scenarios. Latencies in seconds, memory in bytes per device."""

    fits: np.ndarray
    weights_bytes: np.ndarray
    activation_bytes: np.ndarray
    overhead_bytes: np.ndarray
    reserved_bytes: np.ndarray
    capacity_bytes: np.ndarray
    kv_room_bytes: np.ndarray
    kv_bytes_per_seq: np.ndarray
    max_concurrency: np.ndarray  # per replica, every sequence at its full context (no preemption)
    concurrency: np.ndarray  # per replica, requested (clients)
    running: np.ndarray  # per replica, in KV memory
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    requests_per_s: np.ndarray  # whole deployment
    output_tokens_per_s: np.ndarray
    prefill_s: np.ndarray  # one request's prefill alone
    decode_batch: np.ndarray
    prefill_bound: np.ndarray  # index into timing.BOUNDS
    decode_bound: np.ndarray
    prefill_parts_s: np.ndarray  # (4, n): compute, memory, comm, overhead
    decode_parts_s: np.ndarray


CHUNK = 32_768  # points per block: keeps the temporaries in cache (2.5x faster than one 1M-point pass)


@functools.cache
def _keep_freed_memory() -> None:
    """Let glibc reuse freed blocks instead of handing them back to the OS after every block.

    A block's temporaries (CHUNK floats, 256 KB) exceed glibc's default mmap threshold, and the heap top
    is trimmed whenever they are freed, so each temporary cost fresh page faults: measured ~3,000 faults
    per operator table and 2.5x the CPU time of a whole block. Fixed thresholds (mallopt) keep them in the
    heap; at most 128 MB of freed memory stays mapped. glibc only; a no-op elsewhere.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks below 32 MB come from the heap
        libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD: return the heap top only beyond 128 MB free
    except (OSError, AttributeError):
        pass


def evaluate(inp: SweepInput) -> SweepResult:
    """All numbers for every scenario in `inp`, evaluated block by block (views, written into one result)."""
    n = len(inp.input_len)
    if n > 1:
        _keep_freed_memory()
    if n <= CHUNK:
        return _evaluate(inp)
    out: dict[str, np.ndarray] = {}
    for i in range(0, n, CHUNK):
        part = _evaluate(_take_tree(inp, slice(i, min(i + CHUNK, n))))
        for f in fields(SweepResult):
            a = getattr(part, f.name)
            if f.name not in out:
                out[f.name] = np.empty(a.shape[:-1] + (n,), dtype=a.dtype)
            out[f.name][..., i : i + a.shape[-1]] = a
    return SweepResult(**out)


def _evaluate(inp: SweepInput) -> SweepResult:
    sys, eng, mem = inp.system, inp.engine, inp.engine_memory
    s, o = inp.input_len, inp.output_len
    budget = memory_budget(
        sys.shape,
        sys.fmt,
        sys.layout,
        sys.dev,
        mem.memory_fraction,
        mem.fraction_of_free,
        mem.overhead_gb,
        eng.max_batch_tokens,
        eng.max_seqs,
    )
    kv_seq = kv_bytes_per_sequence(sys.shape, sys.fmt, sys.layout, s + o)
    fit_conc = np.minimum(max_concurrency(budget, kv_seq), eng.max_seqs)
    fits = (fit_conc >= 1) & inp.layout_ok
    # Admission (catalogs/engines.yaml `admission`): a waiting request starts when KV for its prompt plus
    # kv_reserve x its output is free. Running requests hold S + O/2 on average (pages grow per token), so at
    # most cap(S + max(kv_reserve, 1/2) O) run at once: cap(S + O/2) for vLLM's paged allocator, cap(S + O) for
    # TensorRT-LLM's GUARANTEED_NO_EVICT, which reserves the whole output.
    held = s + np.maximum(eng.kv_reserve, 0.5) * o
    kv_mean = kv_bytes_per_sequence(sys.shape, sys.fmt, sys.layout, held)
    admit = np.maximum(np.minimum(max_concurrency(budget, kv_mean), eng.max_seqs), fit_conc)
    # an engine that preempts also starts requests whose reservation fits now (vLLM: the prompt), and time-shares
    # the cache among them; one that does not keeps the rest waiting in line
    kv_start = kv_bytes_per_sequence(sys.shape, sys.fmt, sys.layout, s + eng.kv_reserve * o + 1)
    can_start = np.maximum(np.minimum(max_concurrency(budget, kv_start), eng.max_seqs), admit)
    admit_start = np.where(eng.preempts > 0, can_start, admit)
    clients = np.ceil(inp.concurrency / inp.replicas)
    per_replica = np.where(np.isinf(inp.concurrency), np.maximum(admit, 1.0), clients)
    running = np.maximum(np.minimum(per_replica, admit), 1.0)
    res = closed_loop(sys, eng, s, o, running)
    rps_replica = res.requests_per_s
    # admitted beyond what the mean KV allows: preemption time-shares the running slots (TPOT stretches);
    # beyond what fits at prompt length: clients wait for a slot (Little's law on the waiting line)
    admitted = np.maximum(np.minimum(per_replica, admit_start), running)
    tpot = res.tpot_s * admitted / running
    ttft = res.ttft_s + np.maximum(per_replica - admitted, 0.0) / np.maximum(rps_replica, 1e-12)
    e2e = ttft + np.maximum(o - 1, 0.0) * tpot
    rps = np.where(fits, rps_replica * inp.replicas, 0.0)
    pre = res.prefill
    dec = res.decode
    pre_parts = np.stack([pre.compute_s, pre.memory_s, pre.comm_s, pre.overhead_s])
    dec_parts = np.stack([dec.compute_s, dec.memory_s, dec.comm_s, dec.overhead_s])
    return SweepResult(
        fits=fits,
        weights_bytes=budget.weights,
        activation_bytes=budget.activations,
        overhead_bytes=budget.overhead,
        reserved_bytes=budget.reserved,
        capacity_bytes=budget.capacity,
        kv_room_bytes=budget.kv_room,
        kv_bytes_per_seq=kv_seq,
        max_concurrency=fit_conc,
        concurrency=per_replica,
        running=running,
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_s=e2e,
        requests_per_s=rps,
        output_tokens_per_s=rps * o,
        prefill_s=pre.total_s,
        decode_batch=res.decode_batch,
        prefill_bound=np.argmax(pre_parts, axis=0),
        decode_bound=np.argmax(dec_parts, axis=0),
        prefill_parts_s=pre_parts,
        decode_parts_s=dec_parts,
    )


def resolved_input(r: Resolved) -> SweepInput:
    """Length-one arrays for a resolved scenario: a single estimate runs the sweep's formulas."""
    scn, eng = r.scenario, r.engine

    def one(v) -> np.ndarray:
        return np.array([float(v)])

    return SweepInput(
        system=r.system,
        engine=eng.arrays(),
        engine_memory=EngineMemory(
            memory_fraction=one(eng.memory_fraction),
            fraction_of_free=np.array([eng.memory_fraction_of == "free"]),
            overhead_gb=one(eng.overhead_gb),
        ),
        input_len=one(scn.input_len),
        output_len=one(scn.output_len),
        concurrency=one(np.inf if scn.concurrency == "max" else scn.concurrency),
        replicas=one(scn.replicas),
        layout_ok=np.array([layer_check(r.arch, scn) is None]),
    )


def _concat_tree(items: list):
    """Concatenate the arrays of many (nested) dataclasses of the same type."""
    first = items[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(items)
    return type(first)(**{f.name: _concat_tree([getattr(i, f.name) for i in items]) for f in fields(first)})


def build_input(scenarios: list[Scenario], catalog: Catalog | None = None) -> tuple[SweepInput, list[str | None]]:
    """Arrays for many scenarios, each distinct (model, hardware, formats, engine) resolved once.

    errors[i] says why scenario i could not be resolved (starting with UNSUPPORTED where the engine does not run
    the combination); the arrays hold the others, in order.
    """
    catalog = catalog or load_catalog()
    cache: dict[tuple, Resolved | str] = {}
    parts: list[SweepInput] = []
    errors: list[str | None] = []
    for scn in scenarios:
        key = (scn.model, scn.hardware, scn.weight_format, scn.kv_format, scn.engine)
        if key not in cache:
            try:
                cache[key] = resolve(scn, catalog)
            except UnsupportedError as exc:
                cache[key] = UNSUPPORTED + str(exc)
            except (KeyError, ValueError) as exc:
                cache[key] = str(exc)
        base = cache[key]
        if isinstance(base, str):
            errors.append(base)
            continue
        layout = scenario_layout(scn)
        r = dataclasses.replace(base, scenario=scn, system=dataclasses.replace(base.system, layout=layout))
        parts.append(resolved_input(r))
        errors.append(None)
    if not parts:
        raise ValueError("no scenario could be resolved: " + "; ".join(e for e in errors if e))
    return _concat_tree(parts), errors


def sweep(scenarios: list[Scenario], catalog: Catalog | None = None) -> tuple[SweepResult, list[str | None]]:
    """Evaluate many scenarios at once; errors[i] is set (and row i absent) where scenario i failed."""
    inp, errors = build_input(scenarios, catalog)
    return evaluate(inp), errors


def _take_tree(obj, idx: np.ndarray | slice):
    """Index every array inside a (nested) frozen dataclass (a slice gives views)."""
    if isinstance(obj, np.ndarray):
        return obj[idx]
    return type(obj)(**{f.name: _take_tree(getattr(obj, f.name), idx) for f in fields(obj)})


def expand(inp: SweepInput, idx: np.ndarray, **overrides: np.ndarray) -> SweepInput:
    """Rows `idx` of `inp` (repeats allowed), with top-level arrays such as input_len replaced.

    This is how a planner or a chart builds millions of points from a few resolved combinations:
    resolve each (model, device, format, engine) once, then tile and vary the numeric axes.
    """
    out = _take_tree(inp, idx)
    layout = overrides.pop("layout", None)
    if layout is not None:
        out = dataclasses.replace(out, system=dataclasses.replace(out.system, layout=layout))
    return dataclasses.replace(out, **overrides)
