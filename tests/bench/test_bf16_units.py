"""`benchmarks.micro.bf16_units`: reading oneDNN's log, and one small run of every row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.micro import bf16_units

ROOT = Path(__file__).resolve().parents[2]

LOG = """\
onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with float16, Intel DL Boost and bfloat16 support \
and Intel AMX with bfloat16 and 8-bit integer support
onednn_verbose,v1,primitive,exec,cpu,reorder,brgemm_matmul_copy_reorder_t,undef,src:f32::blocked:\
ab::f0 dst:f32::blocked:BA16a64b::f0,attr-scratchpad:user,,2048x2048,13.6
onednn_verbose,v1,primitive,exec,cpu,matmul,brg_matmul:avx512_core_amx,undef,src:bf16::blocked:ab\
::f0 wei:bf16::blocked:ab::f0 dst:bf16::blocked:ab::f0,,,2048x2048:2048x2048,20.1
onednn_verbose,v1,primitive,exec,cpu,matmul,brg_matmul:avx512_core,undef,src:f32:a:blocked:ab::f0 \
wei:f32:a:blocked:BA16a64b::f0 dst:f32:a:blocked:ab::f0,attr-scratchpad:user,,2048x2048,167.6
onednn_verbose,v1,graph,exec,cpu,100002,matmul_post_ops,MatMul_0,,in0_f32:0:strided:undef:2048x2048\
:2048s1,fpm:strict,matmul_t,dnnl_backend,181.4
onednn_verbose,v1,primitive,create:cache_miss,cpu,matmul,gemm:jit,undef,src:bf16,,,1x1,0.1
"""


def test_the_log_names_each_dtypes_kernel_and_skips_reorders_graphs_and_creation():
    assert bf16_units._implementations(LOG) == {"bfloat16": "brg_matmul:avx512_core_amx",
                                               "float32": "brg_matmul:avx512_core"}
    assert bf16_units._implementations("no oneDNN here\n") == {}


def test_a_small_run_fills_every_row(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "benchmarks.micro.bf16_units", "--size", "64",
                           "--repeats", "1"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines()
            if line.startswith("| ") and "GFLOP" not in line}
    assert set(rows) == set(bf16_units.ROWS)
    for line in rows.values():
        assert "error" not in line and line.count("×") == 1, line
    assert "CPU: " in done.stdout and (tmp_path / "benchmarks/results/bf16-units.txt").exists()
