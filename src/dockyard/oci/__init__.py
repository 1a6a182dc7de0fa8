"""The pure OCI core: digests, names, media types, manifests and error codes.

Nothing in this package does I/O, so all of it is cheap to test and safe to use
from any layer.
"""
