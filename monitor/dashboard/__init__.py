"""The confusion-matrix dashboard: a TensorBoard plugin (`metadata`, `summary`, `plugin`, `static/`)."""
