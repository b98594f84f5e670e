"""Benchmarks: `facepair bench train|extract|convert|quality`, each printing tables you can paste.

The top layer: may import any pipeline below it.
"""
