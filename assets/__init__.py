"""GLE Lab data (presets, lessons, page scripts, checkpoints): the package ``gle_lab.assets``."""
