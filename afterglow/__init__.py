"""afterglow's tooling: the ``afterglow`` command and the layer builder."""
