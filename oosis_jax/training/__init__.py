"""Stage 1 training (paper Sec. 3.1, 5.3): loss of Eq. (4), input pipeline, train loop, checkpoints, configs."""
