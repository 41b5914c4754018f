"""The queues the app's events wait in."""

MODEL_QUEUE = "models"     # one shared queue for all model work: one CPU/GPU, one generation at a time
