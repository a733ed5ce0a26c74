#!/usr/bin/env python
"""Fetch DeepMimic's motion-capture clips and humanoid skeleton from the pybullet wheel (zlib licence).

    python scripts/fetch_mocap.py [--out data/mocap/deepmimic]

Writes the 15 ``humanoid3d_*.txt`` clips of ``pybullet_data/data/motions/`` and
``pybullet_data/humanoid/humanoid.urdf`` into ``--out`` with a LICENCE.txt note; read by
``lib.data.synthetic.mocap``. pybullet itself is never installed: pip downloads the wheel (or sdist,
about 100 MB) from the index pip is configured with, and the files are read from the archive.
Files already present are kept. Exits 2 with one error line when the download fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.io import write_atomic, write_text_atomic

PACKAGE = "pybullet==3.2.7"
CLIPS = (
    "backflip", "cartwheel", "crawl", "dance_a", "dance_b", "getup_facedown", "getup_faceup", "jump",
    "kick", "punch", "roll", "run", "spin", "spinkick", "walk",
)  # fmt: skip
MEMBERS = {
    **{f"pybullet_data/data/motions/humanoid3d_{c}.txt": f"humanoid3d_{c}.txt" for c in CLIPS},
    "pybullet_data/humanoid/humanoid.urdf": "humanoid.urdf",
}  # archive path (inside the wheel) -> file name in --out
LICENCE_NOTE = f"""DeepMimic motion clips and humanoid URDF from the {PACKAGE} package (zlib licence).

Bullet Continuous Collision Detection and Physics Library, http://bulletphysics.org
This software is provided 'as-is', without any express or implied warranty. In no event will the authors
be held liable for any damages arising from the use of this software. Permission is granted to anyone to
use this software for any purpose, including commercial applications, and to alter it and redistribute it
freely, subject to the following restrictions:
1. The origin of this software must not be misrepresented; you must not claim that you wrote the original
   software. If you use this software in a product, an acknowledgment in the product documentation would
   be appreciated but is not required.
2. Altered source versions must be plainly marked as such, and must not be misrepresented as being the
   original software.
3. This notice may not be removed or altered from any source distribution.
"""


class FetchError(RuntimeError):
    pass


def _read_archive(path: Path, wanted: list[str]) -> dict[str, bytes]:
    """Members of a wheel (zip) or sdist (tar.gz), matched by path suffix (an sdist nests them deeper)."""
    found: dict[str, bytes] = {}
    if path.suffix == ".whl" or zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            for member in wanted:
                name = next((n for n in names if n == member or n.endswith("/" + member)), None)
                if name is not None:
                    found[member] = archive.read(name)
    else:
        with tarfile.open(path) as archive:
            names = archive.getnames()
            for member in wanted:
                name = next((n for n in names if n.endswith("/" + member)), None)
                if name is not None and (f := archive.extractfile(name)) is not None:
                    found[member] = f.read()
    return found


def archive_members(package: str, members: list[str]) -> dict[str, bytes]:
    """The named files of ``package``'s wheel or sdist, downloaded with pip (no dependencies, not built)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
        done = subprocess.run([*cmd, package, "-d", tmp], capture_output=True, text=True)
        archives = [p for p in Path(tmp).iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip"))]
        if done.returncode != 0 or not archives:
            last = (done.stderr.strip().splitlines() or ["no archive downloaded"])[-1]
            raise FetchError(f"pip could not download {package}: {last}")
        found = _read_archive(archives[0], members)
    missing = sorted(set(members) - set(found))
    if missing:
        raise FetchError(f"{archives[0].name} lacks {', '.join(missing)}")
    return found


def fetch_mocap(out: Path, package: str = PACKAGE) -> list[Path]:
    """Extract the clips and URDF into ``out`` unless all are present; returns the paths written."""
    targets = {member: out / name for member, name in MEMBERS.items()}
    missing = {m: p for m, p in targets.items() if not (p.is_file() and p.stat().st_size > 0)}
    if not missing:
        return []
    written = []
    for member, data in archive_members(package, list(missing)).items():
        # Some files end in a NUL byte; keep them byte for byte (the reader strips it).
        written.append(write_atomic(missing[member], lambda f, data=data: f.write(data)))
    write_text_atomic(out / "LICENCE.txt", LICENCE_NOTE)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/mocap/deepmimic"))
    args = parser.parse_args()
    try:
        written = fetch_mocap(args.out)
    except FetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: wrote {len(written)} files" if written else f"{args.out}: present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
