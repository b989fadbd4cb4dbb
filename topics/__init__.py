"""Event contracts: one YAML file per event family, with a sample JSONL stream beside it.

Installed as the package ``streamproc.topics`` so the contracts ship with the wheel.
"""
