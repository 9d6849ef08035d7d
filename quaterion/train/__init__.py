"""Training: `TrainableModel`, the embedding cache, cross-batch memory and callbacks."""
