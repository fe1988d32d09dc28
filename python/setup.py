"""Build hook of the pathfinder Python package (the rest is in pyproject.toml).

When the source tree's build folder (../build, or $PATHFINDER_BUILD) holds
libpathfinder.so.0 and libpathfinder-fig.so.0, they are copied into the
package, so an installed package runs without an installed library (its
own dependencies, OpenBLAS, cJSON, zlib, LAPACKE and PLplot, still come
from the system). The wheel is then tagged for this platform. With
PATHFINDER_BUNDLE=0, or without a build, nothing is copied and the package
loads the library from $PATHFINDER_LIB or the system (see README.md).
"""

import os
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
LIBS = ("libpathfinder.so.0", "libpathfinder-fig.so.0")


def built_libraries():
    if os.environ.get("PATHFINDER_BUNDLE", "1") == "0":
        return []
    build = os.environ.get("PATHFINDER_BUILD", os.path.join(HERE, "..", "build"))
    return [os.path.join(build, name) for name in LIBS if os.path.exists(os.path.join(build, name))]


class BuildPyWithLibraries(build_py):
    def run(self):
        super().run()
        for name in LIBS:   # no stale copy from an earlier build
            stale = os.path.join(self.build_lib, "pathfinder", name)
            if os.path.exists(stale):
                os.remove(stale)
        for src in built_libraries():
            dst = os.path.join(self.build_lib, "pathfinder", os.path.basename(src))
            shutil.copyfile(os.path.realpath(src), dst)   # the file, not the symlink
            os.chmod(dst, 0o755)


class BinaryDistribution(Distribution):
    """A package carrying a shared library is not pure Python."""

    def has_ext_modules(self):
        return bool(built_libraries())


setup(cmdclass={"build_py": BuildPyWithLibraries}, distclass=BinaryDistribution)
