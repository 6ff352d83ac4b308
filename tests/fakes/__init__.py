"""Test doubles shared by the harness tests (fake LLM server)."""
