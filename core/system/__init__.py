"""The operating-system edge every layer uses: atomic files, disk-full messages, processes, child guards.

Imports nothing of `core` but `core.errors`.
"""
