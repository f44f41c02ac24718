"""The rotated siblings of a log file (`NAME.1`, `NAME.2.gz`, `NAME-YYYYMMDD`), oldest first."""

import os
import re
import stat


def rotated_siblings(path):
    """Return the rotated files of `path`, oldest first, then `path` itself last.

    Numbered siblings (`NAME.N`, `NAME.N.gz`: a higher number is older) and dated ones
    (`NAME-YYYYMMDD`, `NAME-YYYYMMDD.gz`: an older date is older) are both recognised; when a
    folder holds both kinds, the dated ones come first. Only names that are (or point at)
    regular files are listed; when `NAME.N` and `NAME.N.gz` both exist (compression under
    way), only the uncompressed one is kept. The live path is always last, existing or not.
    """
    folder, base = os.path.split(path)
    numbered = re.compile(re.escape(base) + r"\.([0-9]{1,9})(\.gz)?")
    dated = re.compile(re.escape(base) + r"-([0-9]{8})(\.gz)?")
    found = {}
    try:
        entries = list(os.scandir(folder or "."))
    except OSError:
        entries = []
    for entry in entries:
        for rank, rule in ((1, numbered), (0, dated)):
            hit = rule.fullmatch(entry.name)
            if hit and _is_regular(entry):
                number = int(hit.group(1))
                age = -number if rank else number
                key = (rank, age)
                compressed = hit.group(2) is not None
                if key not in found or found[key][0]:
                    found[key] = (compressed, entry.path if folder else entry.name)
    return [found[key][1] for key in sorted(found)] + [path]


def _is_regular(entry):
    try:
        return stat.S_ISREG(entry.stat(follow_symlinks=True).st_mode)
    except OSError:
        return False
