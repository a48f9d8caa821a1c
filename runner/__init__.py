"""Orchestration: one training run, start to end, and what follows several runs.

The layer above both `callbacks/` and `monitor/`: it imports them, neither imports it.
`train.py` calls `runner.training.run`; `runner.hooks.RunHooks` is the seam tests use.
"""
