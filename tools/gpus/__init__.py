"""GPU detection: live NVML, nvidia-smi, snapshot replay, and matching to the knowledge base."""
