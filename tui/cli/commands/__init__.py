"""One module per group of `facepair` commands; each has `register(subparsers, parents)`."""
