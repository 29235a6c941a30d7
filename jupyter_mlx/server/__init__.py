"""The jupyter_server extension: the run service behind thin REST handlers."""
