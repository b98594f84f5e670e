"""The demo: a sample project from two public-domain stills, run end to end (`make demo`).

The top layer: may import any pipeline below it.
"""
