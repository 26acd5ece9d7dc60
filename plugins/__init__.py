"""Built-in segio format plugins, registered through the ``segio`` entry-point group."""
