"""The training engine: schedules, loss, optimizers, the compiled train step and the training loop."""
