"""A deployment you can launch: the engine's command and a Kubernetes manifest for a plan row. Flags come from
catalogs/engine_flags.yaml (documented arguments, value kinds, health endpoint, port, gauges, with sources); one not
listed there is an error (`check_argv`). Values: the row, and catalogs/engines.yaml (token budget, memory fraction).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from llmcap.catalog.loader import Catalog, catalog_dir
from llmcap.catalog.schema import Frozen
from llmcap.plan.request import Candidate, PlanRequest

K8S = "k8s"
UNQUANTIZED = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
FLAGS_FILE = "engine_flags.yaml"
HF_SECRET = {"name": "hf-token", "key": "token", "optional": True}  # a Secret with a Hugging Face token, if gated


class LaunchError(ValueError):
    """A row that cannot be launched, or a flag that is not documented."""


class FlagSpec(Frozen):
    kind: Literal["int", "float", "str", "path", "choice", "flag"]
    choices: tuple[str, ...] | None = None


class Gauges(Frozen):
    running: str
    waiting: str


class EngineFlags(Frozen):
    program: tuple[str, ...] = Field(min_length=1)
    model: str = Field(description="'positional' or the flag that names the model")
    default_port: int = Field(ge=1, le=65535)
    health_path: str = Field(pattern=r"^/")
    metrics_path: str | None = None
    metrics: Gauges | None = None
    images: dict[str, str] = Field(default_factory=dict, description="device vendor -> container image")
    data_parallel_flag: str | None = None
    config_flag: str | None = None
    config_keys: dict[str, FlagSpec] = Field(default_factory=dict)
    source: str = Field(min_length=3)
    field_sources: dict[str, str] = Field(default_factory=dict)
    estimated: dict[str, str] = Field(default_factory=dict)
    flags: dict[str, FlagSpec]


class Kubernetes(Frozen):
    gpu_resources: dict[str, str] = Field(description="device vendor -> extended resource of its device plugin")
    source: str = Field(min_length=3)


class EngineFlagsCatalog(Frozen):
    engines: dict[str, EngineFlags]
    kubernetes: Kubernetes


class Launch(Frozen):
    """One engine command for a row: argv, its shell form, the config file it reads, how many hosts run it."""

    engine: str
    argv: tuple[str, ...]
    command: str
    config_path: str | None = None
    config: dict[str, Any] | None = None
    hosts: int = 1
    notes: tuple[str, ...] = ()


@lru_cache(maxsize=4)
def load_engine_flags(root: Path | None = None) -> EngineFlagsCatalog:
    text = ((root or catalog_dir()) / FLAGS_FILE).read_text(encoding="utf-8")
    return EngineFlagsCatalog.model_validate(yaml.safe_load(text))


def _value_ok(spec: FlagSpec, value: str) -> bool:
    if spec.kind == "int":
        return re.fullmatch(r"-?\d+", value) is not None
    if spec.kind == "float":
        return re.fullmatch(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value) is not None
    if spec.kind == "choice":
        return value in (spec.choices or ())
    return bool(value) and not value.startswith("-")


def check_argv(spec: EngineFlags, argv: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """The flags of a command and their values; LaunchError on a flag the engine does not document or a bad value."""
    n = len(spec.program)
    if tuple(argv[:n]) != spec.program:
        raise LaunchError(f"command does not start with {' '.join(spec.program)}: {' '.join(argv[:n])}")
    rest, seen = list(argv[n:]), {}
    if spec.model == "positional":
        if not rest or rest[0].startswith("-"):
            raise LaunchError("the model must be the first argument")
        seen["MODEL"] = rest.pop(0)
    while rest:
        flag = rest.pop(0)
        fs = spec.flags.get(flag)
        if fs is None:
            raise LaunchError(f"flag {flag} is not in the engine's documented list ({FLAGS_FILE})")
        if fs.kind == "flag":
            seen[flag] = None
            continue
        if not rest or not _value_ok(fs, rest[0]):
            got = rest[0] if rest else "nothing"
            raise LaunchError(f"flag {flag} takes a {fs.kind} value {list(fs.choices or ())}, got {got}")
        seen[flag] = rest.pop(0)
    return seen


def node_devices(hardware: str, catalog: Catalog) -> int | None:
    """Devices in the largest cloud instance of this device type (one host), or None when none is catalogued."""
    sizes = [o.devices_per_instance for o in catalog.cloud_prices.values() if o.hardware == hardware]
    return max(sizes) if sizes else None


def resolve_model(cand: Candidate, req: PlanRequest, catalog: Catalog) -> tuple[str, str | None, str | None]:
    """(model id or path, online quantization to ask for or None, a note) for the row's engine and weights."""
    meta = catalog.model(req.model).meta
    fmt, eng = cand.weight_format, cand.engine
    ckpt = catalog.checkpoint(req.model)
    if ckpt is not None and ckpt.weights == fmt:
        return ckpt.id, None, None
    name = meta.id.split("/")[-1]
    same = [c for c in meta.checkpoints if c.weights == fmt]
    if eng == "llama.cpp":
        quant = fmt.upper().replace("-", "_") if fmt not in UNQUANTIZED else fmt.upper()
        repo = f" (GGUF repository in the catalog: {same[0].id})" if same else ""
        return f"/models/{name}-{quant}.gguf", None, f"-m: put the {quant} GGUF file of {meta.id} there{repo}"
    if fmt in UNQUANTIZED:
        return meta.id, None, None
    if fmt == "fp8" and eng in ("vllm", "sglang"):
        hint = f"; the pre-quantized {same[0].id} loads without --quantization" if same else ""
        return meta.id, "fp8", f"FP8 weights quantized online from the 16-bit checkpoint{hint}"
    if eng == "trtllm":
        same.sort(key=lambda c: not c.id.startswith("nvidia/"))
    if same:
        return same[0].id, None, f"{fmt} checkpoint from the catalog; the engine reads its quantization config"
    if eng == "mlx":
        bits = re.sub(r"\D", "", fmt) or "4"
        note = f"convert first: mlx_lm.convert --hf-path {meta.id} -q --q-bits {bits}"
        return f"/models/{name}-{bits}bit", None, note
    return f"<{meta.id} in {fmt}>", None, f"no {fmt} checkpoint of {meta.id} in the catalog: quantize one and name it"


def _kv(eng: str, kv: str) -> str | None:
    wide = kv in UNQUANTIZED
    table = {
        "vllm": "auto" if wide else {"fp8": "fp8"}.get(kv),
        "sglang": "auto" if wide else {"fp8": "fp8_e4m3"}.get(kv),
        "trtllm": "auto" if wide else {"fp8": "fp8"}.get(kv),
        "llama.cpp": {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "q8-0": "q8_0", "q4-0": "q4_0"}.get(kv),
        "mlx": "" if wide else {"int8": "8", "q8-0": "8", "int4": "4", "q4-0": "4"}.get(kv),
    }
    return table.get(eng)


def _replicas_per_command(cand: Candidate, catalog: Catalog, spec: EngineFlags) -> int:
    """Data-parallel replicas one command runs: all of them when the engine does DP and they fit on one host."""
    if spec.data_parallel_flag is None or cand.replicas <= 1 or cand.ep > 1:
        return 1  # with EP, vLLM/SGLang DP ranks share the experts: no longer independent replicas
    per_host = (node_devices(cand.hardware, catalog) or 0) // (cand.tp * cand.pp)
    return max(1, min(cand.replicas, per_host))


def build_command(
    cand: Candidate,
    req: PlanRequest,
    catalog: Catalog,
    *,
    port: int | None = None,
    data_parallel: bool = True,
    flags: EngineFlagsCatalog | None = None,
) -> Launch:
    """The engine's launch command for a row (data_parallel=False: one replica per command, as in a pod)."""
    if cand.mode != "aggregated":
        raise LaunchError(f"only aggregated rows can be exported; this row is {cand.mode}")
    flags = flags or load_engine_flags()
    eng = cand.engine
    if eng not in flags.engines:
        raise LaunchError(f"no launch flags for engine {eng}; known: {', '.join(flags.engines)}")
    spec, defaults = flags.engines[eng], catalog.engines[eng]
    port = port or spec.default_port
    model, quant, model_note = resolve_model(cand, req, catalog)
    kv = _kv(eng, cand.kv_format)
    if kv is None:
        raise LaunchError(f"{eng} has no documented KV-cache setting for {cand.kv_format}")
    notes = [model_note] if model_note else []
    dp = _replicas_per_command(cand, catalog, spec) if data_parallel else 1
    hosts = math.ceil(cand.replicas / dp)
    budget, frac = int(defaults["max_batch_tokens"]), float(defaults["memory_fraction"])
    args: list[str] = []
    config, config_path = None, None
    if eng in ("vllm", "sglang"):
        v = eng == "vllm"
        args += ["--tensor-parallel-size" if v else "--tp-size", str(cand.tp)]
        args += ["--pipeline-parallel-size" if v else "--pp-size", str(cand.pp)]
        if cand.ep > 1:
            args += ["--enable-expert-parallel"] if v else ["--ep-size", str(cand.ep)]
        if dp > 1:
            args += [spec.data_parallel_flag or "", str(dp)]
        args += ["--max-num-seqs" if v else "--max-running-requests", str(cand.max_seqs)]
        args += ["--max-num-batched-tokens" if v else "--chunked-prefill-size", str(budget)]
        args += ["--kv-cache-dtype", kv]
        if cand.weight_format in UNQUANTIZED:
            args += ["--dtype", UNQUANTIZED[cand.weight_format]]
        if quant:
            args += ["--quantization", quant]
        args += ["--gpu-memory-utilization" if v else "--mem-fraction-static", f"{frac:g}"]
        if not v:
            args += ["--enable-metrics"]
    elif eng == "trtllm":
        args += ["--backend", "pytorch", "--tp_size", str(cand.tp), "--pp_size", str(cand.pp)]
        if cand.ep > 1:
            args += ["--ep_size", str(cand.ep)]
        args += ["--max_batch_size", str(cand.max_seqs), "--max_num_tokens", str(budget)]
        args += ["--kv_cache_free_gpu_memory_fraction", f"{frac:g}"]
        if kv != "auto":
            config, config_path = {"kv_cache_config": {"dtype": kv}}, "/config/extra-llm-api-options.yaml"
            _check_config(spec, config)
            args += [spec.config_flag or "", config_path]
    elif eng == "llama.cpp":
        layers = catalog.model(req.model).arch.num_layers + 1  # + the output layer: everything on the GPU
        device = catalog.device(cand.hardware)
        ctx = cand.max_seqs * math.ceil(req.input_len + req.output_len)
        args += ["-ngl", str(0 if device.kind == "cpu" else layers), "--parallel", str(cand.max_seqs)]
        args += ["--ctx-size", str(ctx), "-b", str(budget), "-ub", str(min(budget, 512))]
        args += ["--cache-type-k", kv, "--cache-type-v", kv]
        if cand.tp * cand.pp > 1:
            args += ["--split-mode", "row" if cand.tp > 1 else "layer"]
        args += ["--metrics"]
        notes.append(f"--ctx-size = {cand.max_seqs} slots x {math.ceil(req.input_len + req.output_len)} tokens")
    elif eng == "mlx":
        if cand.tp * cand.pp > 1:
            raise LaunchError("mlx_lm.server rows are one device per replica; this row splits the model")
        args += ["--decode-concurrency", str(cand.max_seqs), "--prefill-step-size", str(budget)]
        if kv:
            args += ["--kv-bits", kv]
    else:
        raise LaunchError(f"no launch recipe for engine {eng}")
    model_args = [model] if spec.model == "positional" else [spec.model, model]
    argv = (*spec.program, *model_args, "--host", "0.0.0.0", "--port", str(port), *args)
    check_argv(spec, argv)
    if hosts > 1:
        each = f"{cand.tp * cand.pp * dp} device(s)"
        notes.append(
            f"run {hosts} copies ({cand.replicas} replicas), each on its own {each} and port, behind a load balancer"
        )
    cmd = shlex.join(argv)
    return Launch(engine=eng, argv=argv, command=cmd, config_path=config_path, config=config, hosts=hosts, notes=notes)


def _check_config(spec: EngineFlags, config: dict[str, Any], prefix: str = "") -> None:
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            _check_config(spec, value, path + ".")
        elif path not in spec.config_keys or not _value_ok(spec.config_keys[path], str(value)):
            raise LaunchError(f"config key {path}={value} is not documented for this engine ({FLAGS_FILE})")


def render_command(launch: Launch) -> str:
    """Shell text: notes as comments, the config file (if any) written first, then the command."""
    lines = [f"# {n}" for n in launch.notes]
    if launch.config is not None and launch.config_path:
        body = yaml.safe_dump(launch.config, sort_keys=False).rstrip()
        lines += [f"mkdir -p {shlex.quote(str(Path(launch.config_path).parent))}"]
        lines += [f"cat > {shlex.quote(launch.config_path)} <<'EOF'", body, "EOF"]
    lines.append(launch.command)
    return "\n".join(lines) + "\n"


def k8s_name(cand: Candidate, req: PlanRequest) -> str:
    base = f"{cand.engine}-{req.model.split('/')[-1]}".lower()
    return re.sub(r"[^a-z0-9-]+", "-", base).strip("-")[:63].rstrip("-")


def planned_in_flight(cand: Candidate, req: PlanRequest) -> int:
    """Requests one replica holds at the planned rate (Little's law: rate per replica x mean time in system)."""
    e2e_s = (cand.ttft_ms_p50 + cand.tpot_ms_p50 * max(req.output_len - 1, 0)) / 1e3
    return max(1, min(cand.max_seqs, math.ceil(req.rate_rps / cand.replicas * e2e_s)))


def build_manifest(
    cand: Candidate,
    req: PlanRequest,
    catalog: Catalog,
    *,
    port: int | None = None,
    max_replicas: int | None = None,
    min_replicas: int | None = None,
    flags: EngineFlagsCatalog | None = None,
) -> list[dict[str, Any]]:
    """Deployment (one pod per replica), Service and HorizontalPodAutoscaler (plus a ConfigMap if one is needed).

    The autoscaler's bounds: `min_replicas`/`max_replicas` when given (a day plan's autoscaled schedule,
    llmcap.plan.autoscale.replica_bounds), else the row's replicas and twice that."""
    flags = flags or load_engine_flags()
    launch = build_command(cand, req, catalog, port=port, data_parallel=False, flags=flags)
    spec = flags.engines[cand.engine]
    port = port or spec.default_port
    device = catalog.device(cand.hardware)
    gpus = cand.tp * cand.pp
    resource = flags.kubernetes.gpu_resources.get(device.vendor)
    if resource is None and device.kind != "cpu":
        known = ", ".join(f"{v} {r}" for v, r in flags.kubernetes.gpu_resources.items())
        raise LaunchError(f"no Kubernetes GPU resource for {device.vendor} devices ({cand.hardware}); known: {known}")
    name = k8s_name(cand, req)
    labels = {"app": name, "app.kubernetes.io/managed-by": "llmcap"}
    image = spec.images.get(device.vendor) or f"REPLACE-WITH-{cand.engine}-image-for-{device.vendor}".lower()
    probe = {"httpGet": {"path": spec.health_path, "port": port}, "periodSeconds": 10}
    container: dict[str, Any] = {
        "name": re.sub(r"[^a-z0-9-]", "-", cand.engine),
        "image": image,
        "command": list(launch.argv),
        "ports": [{"name": "http", "containerPort": port}],
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": HF_SECRET}}],
        "startupProbe": {**probe, "failureThreshold": 180},  # up to 30 min to download and load weights
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if resource is not None:
        container["resources"] = {"limits": {resource: gpus}}
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    docs: list[dict[str, Any]] = []
    if launch.config is not None and launch.config_path:
        cm = f"{name}-config"
        fname = Path(launch.config_path).name
        data = {fname: yaml.safe_dump(launch.config, sort_keys=False)}
        docs.append({**_doc("v1", "ConfigMap", {"name": cm, "labels": labels}, None), "data": data})
        container["volumeMounts"].append({"name": "config", "mountPath": str(Path(launch.config_path).parent)})
        volumes.append({"name": "config", "configMap": {"name": cm}})
    if any(a.startswith("/models/") for a in launch.argv):
        container["volumeMounts"].append({"name": "models", "mountPath": "/models"})
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": f"{name}-models"}})
    annotations = {"llmcap/row": f"{cand.hardware} x{cand.devices} tp={cand.tp} pp={cand.pp} ep={cand.ep}"}
    if spec.metrics_path:
        annotations |= {"prometheus.io/scrape": "true", "prometheus.io/port": str(port)}
        annotations["prometheus.io/path"] = spec.metrics_path
    meta = {"name": name, "labels": labels}
    pod = {
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": {"containers": [container], "volumes": volumes},
    }
    notes = {"annotations": {"llmcap/notes": "; ".join(launch.notes)}}
    dep = {"replicas": cand.replicas, "selector": {"matchLabels": {"app": name}}, "template": pod}
    docs.append(_doc("apps/v1", "Deployment", meta | notes, dep))
    docs.append(_doc("v1", "Service", meta, {"selector": {"app": name}, "ports": [{"name": "http", "port": port}]}))
    series = spec.metrics.running if spec.metrics else None
    metric_note = (
        f"Prometheus series {series} (requests being decoded), served as a Pods metric by a custom-metrics adapter "
        "such as prometheus-adapter"
        if series
        else f"{cand.engine} documents no Prometheus gauge of running requests: export one under this name"
    )
    metric = {"name": (series or "requests_running").replace(":", "_")}
    target = {"type": "AverageValue", "averageValue": str(planned_in_flight(cand, req))}
    hpa = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": max(min_replicas if min_replicas is not None else cand.replicas, 1),
        "maxReplicas": max(max_replicas or 2 * cand.replicas, min_replicas or 1, 1),
        "metrics": [{"type": "Pods", "pods": {"metric": metric, "target": target}}],
    }
    docs.append(
        _doc("autoscaling/v2", "HorizontalPodAutoscaler", meta | {"annotations": {"llmcap/metric": metric_note}}, hpa)
    )
    return docs


def _doc(api: str, kind: str, metadata: dict[str, Any], spec: dict[str, Any] | None) -> dict[str, Any]:
    doc = {"apiVersion": api, "kind": kind, "metadata": metadata}
    return doc | {"spec": spec} if spec is not None else doc


def render_manifest(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(json.loads(json.dumps(docs)), sort_keys=False)  # a copy: no YAML anchors


def targets() -> tuple[str, ...]:
    """What a row exports to: each engine of catalogs/engine_flags.yaml, and a Kubernetes manifest."""
    return (*load_engine_flags().engines, K8S)


def export(
    cand: Candidate, req: PlanRequest, catalog: Catalog, target: str, replica_bounds: tuple[int, int] | None = None
) -> str:
    """What `llmcap plan --export RANK --target T` prints for a row; `replica_bounds` (min, max) set the k8s
    autoscaler's bounds (from a day plan)."""
    if target not in targets():
        raise LaunchError(f"unknown target {target}; known: {', '.join(targets())}")
    if target == K8S:
        lo, hi = replica_bounds if replica_bounds else (None, None)
        return render_manifest(build_manifest(cand, req, catalog, min_replicas=lo, max_replicas=hi))
    if target != cand.engine:
        raise LaunchError(f"target {target} is not this row's engine {cand.engine}: export --target {cand.engine}")
    return render_command(build_command(cand, req, catalog))
