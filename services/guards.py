"""Hooks services registers into workspaces (so workspaces never imports services)."""
