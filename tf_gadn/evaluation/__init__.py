"""Evaluation shared by every method: the transfer report (pixel error, style attribution, factor errors, Fréchet
distances), its feature network, linear probes, and image grids / figures."""
