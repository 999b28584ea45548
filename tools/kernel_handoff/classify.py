"""GPU kernel name -> kind of work, for torch profiler traces of sglang diffusion runs.

Kinds: attention, gemm, norm_elementwise, communication, host_device_copy, other (idle gaps are not kernels;
findings.py measures them). `family` narrows the kind (fa2, fa3, sdpa_flash, cublas, rmsnorm, all_to_all...),
so next steps can match known fast paths and pick the right kernel skill.

The patterns follow real kernel names: FlashAttention 2 (`flash_fwd_kernel`, `flash::flash_fwd_splitkv_kernel`),
FlashAttention 3 (`FlashAttnFwdSm90`, `flash_fwd_..._sm90`), PyTorch SDPA (`pytorch_flash::flash_fwd_kernel`,
`fmha_cutlassF_*`, `efficient_attention`, cuDNN SDPA), cuBLAS/cuBLASLt (`sm90_xmma_gemm_*`, `nvjet_*`,
`ampere_bf16_s16816gemm_*`), CUTLASS, NCCL (`ncclDevKernel_SendRecv`, `ncclDevKernel_AllReduce_*`), Inductor's
Triton kernels (`triton_poi_`, `triton_red_`, `triton_per_`), ATen elementwise kernels, and sglang's own JIT kernels.
Order matters: the first matching rule wins.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal, NamedTuple

Kind = Literal["attention", "gemm", "norm_elementwise", "communication", "host_device_copy", "idle", "other"]
KINDS: tuple[str, ...] = ("attention", "gemm", "norm_elementwise", "communication", "host_device_copy", "idle",
                          "other")


class KernelClass(NamedTuple):
    kind: str
    family: str
    sglang_kernel: bool  # one of sglang's own JIT/Triton kernels: tune it rather than write a new one


# sglang's own diffusion kernels (jit_kernel/diffusion, sgl_kernel norms): a hotspot here is tuning work.
_SGLANG_KERNELS = re.compile(
    r"fused_inplace_qknorm|qknorm_rope|fuse_scale_shift|_fused_scale_shift|scale_residual|norm_tanh|"
    r"rmsnorm_onepass|group_norm_silu|_rms_norm_fwd|_layer_norm_fwd|fused_add_rmsnorm|FusedAddRMSNorm|"
    r"RMSNormKernel|apply_ltx2_split_rotary|modulate_scale_shift|fused_layernorm_modulate", re.I)

_RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (kind, family, re.compile(pattern)) for kind, family, pattern in (
        # communication first: NCCL names contain words like "Reduce" that other rules could match.
        ("communication", "all_to_all", r"^nccl\w*(SendRecv|AllToAll|Send|Recv)"),
        ("communication", "all_reduce", r"^nccl\w*AllReduce|cross_device_reduce|custom_all_reduce|allreduce"),
        ("communication", "all_gather", r"^nccl\w*AllGather"),
        ("communication", "reduce_scatter", r"^nccl\w*ReduceScatter"),
        ("communication", "broadcast", r"^nccl\w*Broadcast"),
        ("communication", "nccl_other", r"^nccl"),
        # attention: SDPA's vendored flash kernel before FA2, whose name it contains.
        ("attention", "sdpa_flash", r"pytorch_flash::"),
        ("attention", "sdpa_efficient", r"fmha_cutlass[FB]|efficient_attention|mem_efficient|AttentionKernel"),
        ("attention", "sdpa_cudnn", r"cudnn\w*(sdpa|fmha|flash)|generated_fort_native_sdpa"),
        ("attention", "fa4", r"(?i)flash\w*sm1[02]0|FlashAttentionForwardSm100"),
        ("attention", "fa3", r"FlashAttnFwdSm90|flash_fwd\w*[sS]m90|flash::FlashAttn|hopper::flash"),
        ("attention", "fa2", r"flash_fwd_kernel|flash::flash_fwd|flash_fwd_splitkv|flash_bwd"),
        ("attention", "sage", r"(?i)sage|qk_int8|_attn_fwd"),
        ("attention", "sparse", r"(?i)sliding_tile|sta_fwd|vsa_|block_sparse|sparse_attn"),
        ("attention", "attention_other", r"(?i)attention|attn|fmha|softmax_warp"),
        # convolutions share cuDNN/xmma prefixes with GEMMs: catch them first.
        ("other", "conv", r"(?i)xmma_fprop|xmma_dgrad|xmma_wgrad|implicit_convolve|conv2d|conv3d|convolution|winograd"),
        ("gemm", "fp8_gemm", r"(?i)(e4m3|fp8|f8f8)\w*gemm|gemm\w*(e4m3|fp8)|sm90_fp8|deep_gemm|fp8_gemm"),
        ("gemm", "fp4_gemm", r"(?i)nvfp4|fp4_gemm|e2m1|svdquant|nunchaku|gemm_w4a4"),
        ("gemm", "nvjet", r"^nvjet"),
        ("gemm", "cublas", r"(?i)xmma_gemm|s16816gemm|s1688gemm|h16816gemm|gemm_|_gemm|gemmSN|gemv|cublas|"
                           r"splitKreduce|ampere_\w*gemm|volta_\w*gemm|turing_\w*gemm|Kernel2"),
        ("gemm", "cutlass", r"(?i)cutlass"),
        ("gemm", "triton_mm", r"triton_\w*mm|_mm_kernel|matmul"),
        # norms, RoPE, modulation and elementwise work.
        ("norm_elementwise", "qk_norm", r"(?i)qknorm|qk_norm"),
        ("norm_elementwise", "rope", r"(?i)rotary|rope"),
        ("norm_elementwise", "adaln_modulation", r"(?i)scale_shift|modulat|adaln|norm_tanh|scale_residual"),
        ("norm_elementwise", "rmsnorm", r"(?i)rms_?norm"),
        ("norm_elementwise", "layernorm", r"(?i)layer_?norm|_layer_norm"),
        ("norm_elementwise", "groupnorm", r"(?i)group_?norm"),
        ("norm_elementwise", "inductor_fused", r"^triton_(poi|red|per)_"),
        ("norm_elementwise", "activation", r"(?i)gelu|silu|act_and_mul|swiglu|geglu"),
        ("norm_elementwise", "softmax", r"(?i)softmax"),
        ("norm_elementwise", "reduction", r"reduce_kernel|Reduce\w*Kernel"),
        ("norm_elementwise", "data_movement", r"CatArrayBatchedCopy|copy_kernel|index_elementwise|"
                                              r"elementwise_kernel_with_index|gather|scatter|transpose|permute"),
        ("norm_elementwise", "elementwise", r"elementwise_kernel|vectorized_elementwise|unrolled_elementwise|"
                                            r"^triton_|fill_kernel"),
    ))


@lru_cache(maxsize=8192)
def classify_kernel(name: str, cat: str = "kernel") -> KernelClass:
    """Classify one trace event (a kernel, memcpy or memset) by its name and category."""
    if cat == "gpu_memcpy" or name.startswith("Memcpy"):
        if "HtoD" in name or "DtoH" in name or "Pageable" in name or "Pinned" in name:
            return KernelClass("host_device_copy", "memcpy_dtoh" if "DtoH" in name else "memcpy_htod", False)
        return KernelClass("other", "device_copy", False)
    if cat == "gpu_memset" or name.startswith("Memset"):
        return KernelClass("other", "memset", False)
    sglang_kernel = bool(_SGLANG_KERNELS.search(name))
    for kind, family, pattern in _RULES:
        if pattern.search(name):
            return KernelClass(kind, family, sglang_kernel)
    return KernelClass("other", "other", sglang_kernel)


# Families that are PyTorch SDPA rather than FlashAttention itself.
SDPA_FAMILIES = frozenset({"sdpa_flash", "sdpa_efficient", "sdpa_cudnn"})
FA_FAMILIES = frozenset({"fa2", "fa3", "fa4"})
