"""facepair's faces to the user: the command line (`tui.cli.main`) and the Textual app (`tui.app.app`).

Nothing here computes alignment or trains: it renders `core`'s state and sends commands.
"""
