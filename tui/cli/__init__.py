"""The command line: the parser (`main`), one module per command group, progress lines for terminals."""
