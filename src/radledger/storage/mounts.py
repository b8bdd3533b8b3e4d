"""Refuse filesystems on which SQLite's locking and fsync cannot be trusted (RELIABILITY 5)."""

from __future__ import annotations

import os
from pathlib import Path

from radledger.errors import UnsafeStorage

# Filesystems where POSIX advisory locks or fsync ordering are not reliable for SQLite WAL.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "fuse.sshfs",
    "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph", "lustre", "gpfs", "fuse.s3fs",
    "fuse.rclone", "virtiofs",
})


_MOUNT_POINT = 4  # the fifth field of a mountinfo line


def filesystem_type(path: Path, mountinfo: str) -> str:
    """The filesystem type of ``path`` according to a /proc/self/mountinfo text.

    Picks the longest mount point that contains ``path``; "unknown" if none does.
    """
    target = str(path)
    best, best_type = "", "unknown"
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) <= _MOUNT_POINT or not right.split():
            continue
        mount_point = fields[_MOUNT_POINT].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, right.split()[0]
    return best_type


def refuse_network_filesystem(directory: Path) -> None:
    """Raise UnsafeStorage if ``directory`` is on a network filesystem."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return  # not Linux: no mount table to consult
    fstype = filesystem_type(Path(os.path.realpath(directory)), mountinfo)
    if fstype in NETWORK_FILESYSTEMS:
        raise UnsafeStorage(
            f"{directory} is on a {fstype} filesystem; SQLite's locks and fsync are not "
            "reliable there. Keep the ledger on a local disk (or use the PostgreSQL backend)"
        )
