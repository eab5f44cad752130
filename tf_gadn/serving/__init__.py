"""Everything that ships a trained run: SavedModel export, TFLite, the local TF-Serving-compatible server (gRPC + REST),
request batching, the served-model registry, and the client."""
