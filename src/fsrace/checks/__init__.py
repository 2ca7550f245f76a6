"""Checks: named invariants over the model state, and file semantics against an abstract
byte-array file."""
