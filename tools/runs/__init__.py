"""Detached `sglang generate` runs: launch, supervise, lock GPUs, follow logs, record history.

Kept light on purpose: the supervisor process imports these modules, so nothing here pulls in
pydantic or sqlite at import time except `model`, `store` and `results`.
"""
