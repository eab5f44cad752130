"""The metric-learned style space (Xiang & Li, "Anime Style Space Exploration Using Metric Learning and GANs"):
networks, stages, pruning, exploration figures, evaluation."""
