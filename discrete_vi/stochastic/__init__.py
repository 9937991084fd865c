"""Stochastic layers and priors: the parts models are assembled from."""
