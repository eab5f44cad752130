"""GADN (Xiang & Li, "Disentangling Style and Content in Anime Illustrations"): networks, stages, evaluation."""
