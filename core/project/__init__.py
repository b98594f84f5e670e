"""Face-pair projects on disk: project.toml, consent, sources, the folders of a project and the home.

May import `core.errors`, `core.system` and `core.media`.
"""
