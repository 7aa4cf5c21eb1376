"""IMDB sentiment with a GRU trained from scratch: the task (`task.py`), its config and presets (`config.py`),
its trial function and checkpoints (`trial.py`), and what its report says beyond the generic tables (`report.py`)."""
