"""The training gate's parts: ``worker.py`` (the subprocess that trains one workload with one framework) and
``curves.py`` (reading and comparing its output). The gate itself is ``validators/training_gate.py``."""
