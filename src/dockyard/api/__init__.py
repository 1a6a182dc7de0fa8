"""HTTP handlers by spec area, the error writer and the middleware."""
