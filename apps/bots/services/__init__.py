"""Writes for bots: creation and settings (create.py); the run lifecycle and the kill
switches (lifecycle.py)."""
