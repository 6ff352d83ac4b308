"""vt-agent: runs specs through coding agents, gates every diff, keeps a reproducible ledger."""
__version__ = "0.1.0"
