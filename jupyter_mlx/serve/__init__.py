"""Serve a notebook function, or Kernel-Gateway-style annotated cells, as an HTTP endpoint.

The endpoint process (``process.py``) runs the notebook's code once in an IPython shell (not a
kernel: a request never pays a kernel round trip), then forks its workers, which share the
loaded model copy-on-write and answer requests with the notebook's own function.
"""
