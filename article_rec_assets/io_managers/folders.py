"""Listing and removing what a store holds under a folder: a local folder, or an S3 prefix (the
window stores prune old windows and kept GA4 parses with these)."""

from __future__ import annotations

from upath import UPath


class LocalFolders:
    """The names in a folder of the local store, and removing one."""

    def window_names(self, folder: UPath) -> list[str]:
        return [entry.name for entry in folder.iterdir()] if folder.exists() else []

    def remove(self, path: UPath) -> None:
        path.unlink(missing_ok=True)


class S3Folders:
    """The names in a folder (a key prefix) of the S3 store, and removing one."""

    s3: object
    bucket: str

    def window_names(self, folder: UPath) -> list[str]:
        prefix = folder.as_posix().rstrip("/") + "/"
        names = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):  # type: ignore[attr-defined]
            names.extend(item["Key"][len(prefix) :] for item in page.get("Contents", []))
        return [name for name in names if "/" not in name]

    def remove(self, path: UPath) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=path.as_posix())  # type: ignore[attr-defined]
