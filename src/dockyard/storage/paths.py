"""Where everything lives inside a storage driver, drawn once.

    <root>/
      blobs/
        sha256/
          ab/
            ab12...ef            content of blob sha256:ab12...ef, never rewritten
        sha512/...
      uploads/
        <upload id>              bytes received so far for one upload session
        <upload id>.lock         its lock (filesystem: an flock)
        <upload id>.staged-<n>   filesystem: a second name for finished bytes,
                                 renamed into blobs/ at once (swept if a crash
                                 leaves it)
      trash/
        <digest>                 a blob the garbage collector is removing
      quarantine/
        <digest>                 a damaged blob that `dockyard fsck --repair` set aside

A blob appears under blobs/ only by an atomic rename of a complete, verified,
fsynced upload, so a reader never sees a partial blob.
"""

from __future__ import annotations

from dockyard.oci.digest import Digest

BLOBS = "blobs"
UPLOADS = "uploads"
TRASH = "trash"


def blob_path(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def upload_path(upload_id: str) -> str:
    return f"{UPLOADS}/{upload_id}"


def trash_path(digest: str) -> str:
    return f"{TRASH}/{digest}"
