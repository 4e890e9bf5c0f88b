"""OS integration: toasts, token storage, single instance, autostart, launcher badge.

Each module wraps one OS service behind a small class that the composition root builds
with explicit constructor arguments; nothing here keeps module-level state.
"""
