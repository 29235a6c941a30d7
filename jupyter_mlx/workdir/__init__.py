"""Every run in its own folder: the project as it was, the run's writes apart (``folders``); what it
wrote kept as artifacts (``artifacts``); the project's files fingerprinted (``fingerprint``)."""
from .folders import STRATEGIES, RunFolder, RunFolderError, Written, open_run_folder, run_folders_dir

__all__ = ["STRATEGIES", "RunFolder", "RunFolderError", "Written", "open_run_folder", "run_folders_dir"]
