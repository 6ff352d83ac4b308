"""The parity gate's machinery (the gate itself is ``validators.parity_gate``).

- ``op_table``: every checked op, declared once (calls, cases, dtypes, tolerances, in-place/out= forms).
- ``tensors``: seeded numpy inputs, layouts, conversions into a framework ``T``.
- ``run_checks``: the subprocess entry point, in two phases that never share a process:
  ``reference`` (torch only: inputs and expected results) and ``candidate`` (the module under test only: its
  observations). Neither phase judges; ``compare`` (numpy only, in the gate's process) does.
"""
