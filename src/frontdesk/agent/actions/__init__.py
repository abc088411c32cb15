"""Declarative custom actions: YAML specs, slot filling in conversations, identity checks,
signed webhooks run after commit, and a step-by-step log of every run (docs/ACTIONS.md)."""
