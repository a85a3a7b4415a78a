"""Launching a plan row (llmcap.plan.launch): each engine's command parses against its documented flags
(catalogs/engine_flags.yaml), a hand-written vLLM command, Kubernetes manifests, the CLI export, and the errors."""

import json
import shlex

import pytest
import yaml

from llmcap.catalog.loader import load_catalog
from llmcap.cli.main import main
from llmcap.plan.launch import (
    LaunchError,
    build_command,
    build_manifest,
    check_argv,
    export,
    load_engine_flags,
    render_command,
    render_manifest,
)
from llmcap.plan.request import Candidate, PlanRequest
from llmcap.scenario import Slo

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
CAT = load_catalog()
FLAGS = load_engine_flags()
REQ = PlanRequest(model=LLAMA_8B, rate_rps=8, input_len=1000, output_len=200, slo=Slo(ttft_ms=1500, tpot_ms=50))


def row(**kw) -> Candidate:
    base = dict(
        hardware="h100-sxm", devices=2, tp=2, pp=1, ep=1, replicas=1, weight_format="fp8", kv_format="bf16",
        engine="vllm", max_seqs=64, mode="aggregated", ttft_ms_p50=80.0, ttft_ms_p90=150.0, tpot_ms_p50=5.0,
        tpot_ms_p90=8.0, e2e_ms_p90=1800.0, slo_attainment=0.9, goodput_rps=12.0, max_rate_rps=13.0,
        utilization=0.6, usd_per_hour=6.0, usd_per_million_output_tokens=1.0, joules_per_output_token=None,
        output_tokens_per_s_per_device=800.0, price_basis="cloud on-demand: test",
    )  # fmt: skip
    base.update(kw)
    base["devices"] = base["tp"] * base["pp"] * base["replicas"]
    return Candidate(**base)


ROWS = {
    "vllm": row(),
    "sglang": row(engine="sglang", kv_format="fp8"),
    "trtllm": row(engine="trtllm", kv_format="fp8", ep=1),
    "llama.cpp": row(engine="llama.cpp", weight_format="q4-k-m", kv_format="q8-0", tp=1, max_seqs=8),
    "mlx": row(engine="mlx", hardware="m2-ultra-76c", weight_format="mlx-q4", kv_format="bf16", tp=1, max_seqs=16),
}


def test_every_planner_engine_has_documented_flags_with_sources():
    assert set(CAT.engines) - {"generic"} == set(FLAGS.engines)
    for spec in FLAGS.engines.values():
        assert spec.source and spec.health_path.startswith("/") and spec.flags
        assert all(f.startswith("-") for f in spec.flags)


@pytest.mark.parametrize("engine", sorted(ROWS))
def test_each_engine_command_parses_against_its_documented_flags(engine):
    spec = FLAGS.engines[engine]
    launch = build_command(ROWS[engine], REQ, CAT)
    argv = shlex.split(launch.command)
    assert tuple(argv) == launch.argv
    seen = check_argv(spec, argv)
    for token in argv[len(spec.program) :]:
        if token.startswith("-") and token != "-1":
            assert token in spec.flags, f"{engine}: {token} is not documented"
    for flag, value in seen.items():
        if flag == "MODEL":
            continue
        kind = spec.flags[flag].kind
        if kind == "int":
            int(value)
        elif kind == "float":
            float(value)
        elif kind == "choice":
            assert value in spec.flags[flag].choices
        elif kind == "flag":
            assert value is None
    assert seen["--port"] == str(spec.default_port)


def test_hand_written_vllm_command_for_llama_8b_fp8_on_two_h100():
    launch = build_command(ROWS["vllm"], REQ, CAT)
    # docs.vllm.ai engine args: online FP8 of the bf16 checkpoint (--quantization fp8), KV at the model dtype (auto),
    # max_num_seqs = the row's, max_num_batched_tokens and gpu_memory_utilization = engines.yaml defaults (8192, 0.9)
    assert launch.command == (
        "vllm serve meta-llama/Llama-3.1-8B-Instruct --host 0.0.0.0 --port 8000 --tensor-parallel-size 2 "
        "--pipeline-parallel-size 1 --max-num-seqs 64 --max-num-batched-tokens 8192 --kv-cache-dtype auto "
        "--quantization fp8 --gpu-memory-utilization 0.9"
    )
    assert launch.hosts == 1


def test_a_pre_quantized_checkpoint_needs_no_quantization_flag_and_fp8_kv_is_set():
    req = REQ.model_copy(update={"model": "nvidia/Llama-3.1-8B-Instruct-FP8"})
    seen = check_argv(FLAGS.engines["vllm"], build_command(row(kv_format="fp8"), req, CAT).argv)
    assert seen["MODEL"] == "nvidia/Llama-3.1-8B-Instruct-FP8" and "--quantization" not in seen
    assert seen["--kv-cache-dtype"] == "fp8"


def test_data_parallel_replicas_in_one_command_and_one_replica_per_pod():
    cand = row(tp=4, replicas=2)
    seen = check_argv(FLAGS.engines["vllm"], build_command(cand, REQ, CAT).argv)
    assert seen["--data-parallel-size"] == "2"  # 2 x tp 4 fit on one 8-GPU H100 instance
    seen = check_argv(
        FLAGS.engines["sglang"], build_command(cand.model_copy(update={"engine": "sglang"}), REQ, CAT).argv
    )
    assert seen["--dp-size"] == "2"
    pod = build_command(cand, REQ, CAT, data_parallel=False)
    assert "--data-parallel-size" not in pod.argv
    big = build_command(row(tp=8, replicas=3), REQ, CAT)  # 8 devices per replica: one host each
    assert "--data-parallel-size" not in big.argv and big.hosts == 3


def test_expert_parallel_flags():
    moe = row(tp=4, ep=4)
    assert "--enable-expert-parallel" in build_command(moe, REQ, CAT).argv
    assert (
        check_argv(FLAGS.engines["sglang"], build_command(moe.model_copy(update={"engine": "sglang"}), REQ, CAT).argv)[
            "--ep-size"
        ]
        == "4"
    )
    assert (
        check_argv(FLAGS.engines["trtllm"], build_command(moe.model_copy(update={"engine": "trtllm"}), REQ, CAT).argv)[
            "--ep_size"
        ]
        == "4"
    )


def test_trtllm_writes_its_kv_dtype_in_the_extra_options_yaml():
    launch = build_command(ROWS["trtllm"], REQ, CAT)
    assert launch.config == {"kv_cache_config": {"dtype": "fp8"}}
    assert launch.argv[-2:] == ("--extra_llm_api_options", launch.config_path)
    assert launch.argv[1] == "nvidia/Llama-3.1-8B-Instruct-FP8"  # TensorRT-LLM loads a ModelOpt checkpoint
    text = render_command(launch)
    assert "kv_cache_config:" in text and text.rstrip().endswith(launch.command)


def test_llama_cpp_slots_context_and_batches():
    seen = check_argv(FLAGS.engines["llama.cpp"], build_command(ROWS["llama.cpp"], REQ, CAT).argv)
    assert seen["--parallel"] == "8" and seen["--ctx-size"] == str(8 * (1000 + 200))
    assert seen["-b"] == "2048" and seen["-ub"] == "512" and seen["--cache-type-k"] == "q8_0"
    assert seen["-m"].endswith("Q4_K_M.gguf") and int(seen["-ngl"]) > 32  # all 32 layers and the output layer


def test_mlx_concurrency_and_prefill_step():
    seen = check_argv(FLAGS.engines["mlx"], build_command(ROWS["mlx"], REQ, CAT).argv)
    assert seen["--decode-concurrency"] == "16" and seen["--prefill-step-size"] == "2048"


def test_an_undocumented_flag_is_an_error():
    vllm = FLAGS.engines["vllm"]
    with pytest.raises(LaunchError, match="--bogus"):
        check_argv(vllm, ["vllm", "serve", LLAMA_8B, "--bogus", "1"])
    with pytest.raises(LaunchError, match="int"):
        check_argv(vllm, ["vllm", "serve", LLAMA_8B, "--max-num-seqs", "many"])
    with pytest.raises(LaunchError, match="choice"):
        check_argv(vllm, ["vllm", "serve", LLAMA_8B, "--kv-cache-dtype", "int4"])
    fewer = {k: v for k, v in vllm.flags.items() if k != "--max-num-seqs"}
    crippled = FLAGS.model_copy(update={"engines": FLAGS.engines | {"vllm": vllm.model_copy(update={"flags": fewer})}})
    with pytest.raises(LaunchError, match="--max-num-seqs"):
        build_command(ROWS["vllm"], REQ, CAT, flags=crippled)


def _docs(cand):
    docs = list(yaml.safe_load_all(render_manifest(build_manifest(cand, REQ, CAT))))
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize("cand", [ROWS["vllm"], row(tp=4, pp=2, replicas=3), ROWS["trtllm"], ROWS["llama.cpp"]])
def test_manifests_are_valid_kubernetes_objects(cand):
    docs = _docs(cand)
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= set(docs)
    for d in docs.values():
        assert d["apiVersion"] and d["kind"] and d["metadata"]["name"]
    spec = FLAGS.engines[cand.engine]
    dep = docs["Deployment"]
    assert dep["apiVersion"] == "apps/v1" and dep["spec"]["replicas"] == cand.replicas
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["name"] and c["image"] and c["command"][: len(spec.program)] == list(spec.program)
    check_argv(spec, c["command"])
    assert c["resources"]["limits"] == {"nvidia.com/gpu": cand.tp * cand.pp}
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": spec.health_path, "port": spec.default_port}
    mounts = {m["name"] for m in c.get("volumeMounts", [])}
    assert mounts <= {v["name"] for v in dep["spec"]["template"]["spec"]["volumes"]}
    svc = docs["Service"]
    assert svc["apiVersion"] == "v1" and svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["port"] == spec.default_port
    hpa = docs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": dep["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] == cand.replicas and hpa["spec"]["maxReplicas"] == 2 * cand.replicas
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"]
    assert 1 <= int(metric["pods"]["target"]["averageValue"]) <= cand.max_seqs
    if cand.engine == "trtllm":
        assert docs["ConfigMap"]["data"]


def test_amd_devices_ask_for_amd_gpus_and_apple_has_no_kubernetes_resource():
    docs = _docs(row(hardware="mi300x", tp=1))
    limits = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"amd.com/gpu": 1}
    with pytest.raises(LaunchError, match="Apple"):
        build_manifest(ROWS["mlx"], REQ, CAT)


def test_export_errors():
    with pytest.raises(LaunchError, match="sglang.*vllm|vllm.*sglang"):
        export(ROWS["vllm"], REQ, CAT, "sglang")
    with pytest.raises(LaunchError, match="disaggregated"):
        build_command(row(mode="disaggregated 1P:1D"), REQ, CAT)


PLAN = ["plan", "--model", LLAMA_8B, "--hardware", "h100-sxm", "--weights", "fp8", "--input-len", "1024",
        "--output-len", "256", "--rate", "8", "--ttft-ms", "1500", "--tpot-ms", "50"]  # fmt: skip


def test_cli_export_end_to_end(capsys):
    assert main([*PLAN, "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)["candidates"][0]
    assert main([*PLAN, "--export", "1", "--target", first["engine"]]) == 0
    out = capsys.readouterr().out
    command = out.strip().splitlines()[-1]
    spec = FLAGS.engines[first["engine"]]
    seen = check_argv(spec, shlex.split(command))
    assert str(first["max_seqs"]) in seen.values()
    assert main([*PLAN, "--export", "1", "--target", "k8s"]) == 0
    kinds = [d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= set(kinds)


def test_cli_export_errors(capsys):
    assert main([*PLAN, "--format", "json"]) == 0
    cands = json.loads(capsys.readouterr().out)["candidates"]
    other = next(e for e in ("vllm", "sglang", "trtllm") if e != cands[0]["engine"])
    assert main([*PLAN, "--export", "1", "--target", other]) != 0
    err = capsys.readouterr().err
    assert other in err and cands[0]["engine"] in err
    assert main([*PLAN, "--export", str(len(cands) + 1), "--target", "k8s"]) != 0
    assert f"there are {len(cands)} candidates" in capsys.readouterr().err
    assert main([*PLAN, "--export", "1"]) != 0
    assert "--target" in capsys.readouterr().err
