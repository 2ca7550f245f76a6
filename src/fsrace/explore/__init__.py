"""The explorer: runs tasks step by step and decides who runs next.

It knows tasks, steps and the objects each step touches; it knows nothing of filesystems.
"""
