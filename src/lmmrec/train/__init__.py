"""Training: run config, BPR sampler, checkpoints and the trainer loop."""
