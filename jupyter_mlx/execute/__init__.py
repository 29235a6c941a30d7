"""Running notebooks: parameters, and papermill on a kernel. Never touches the store."""
