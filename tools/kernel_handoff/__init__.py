"""plan_kernel_handoff's parts: stream a torch profiler trace, classify kernels, find where time goes, plan next
steps (flags, then known fast paths, then kernel work) and write the hand-off brief for an sglang kernel skill."""
