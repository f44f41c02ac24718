"""The rotated siblings of a log file (`NAME.1`, `NAME.2.gz`, `NAME-YYYYMMDD`), oldest first."""

import os
import re

ROTATED = re.compile(r"(.+)(?:\.([0-9]{1,9})|-([0-9]{8}))(\.gz)?")


def rotated_siblings(path):
    """Return the rotated files of `path`, oldest first, then `path` itself last.

    Numbered siblings (`NAME.N`, `NAME.N.gz`: a higher number is older) and dated ones
    (`NAME-YYYYMMDD`, `NAME-YYYYMMDD.gz`: an older date is older) are both recognised; when a
    folder holds both kinds, the dated ones come first. Only names that are (or point at)
    regular files are listed; when `NAME.N` and `NAME.N.gz` both exist (compression under
    way), only the uncompressed one is kept. The live path is always last, existing or not.
    """
    return Listing(os.path.dirname(os.fspath(path))).siblings(path)


class Listing:
    """One listing of a folder, indexed by the name each rotated file belongs to.

    A search over a glob of thousands of files asks for the siblings of each: the folder is
    listed once, and each question is a dictionary look-up.
    """

    def __init__(self, folder):
        self.folder = folder
        self.by_base = {}
        try:
            entries = list(os.scandir(folder or "."))
        except OSError:
            entries = []
        for entry in entries:
            hit = ROTATED.fullmatch(entry.name)
            if hit:
                self.by_base.setdefault(hit.group(1), []).append((hit, entry))

    def siblings(self, path):
        """Return the rotated files of `path` (a name in this folder), oldest first, then it."""
        found = {}
        for hit, entry in self.by_base.get(os.path.basename(path), ()):
            if not _is_regular(entry):
                continue
            rank = 1 if hit.group(2) is not None else 0
            number = int(hit.group(2) if rank else hit.group(3))
            key = (rank, -number if rank else number)
            compressed = hit.group(4) is not None
            if key not in found or found[key][0]:
                found[key] = (compressed, entry.path if self.folder else entry.name)
        return [found[key][1] for key in sorted(found)] + [path]


def _is_regular(entry):
    try:
        return entry.is_file(follow_symlinks=True)
    except OSError:
        return False
