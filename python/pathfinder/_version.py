"""The version of the library this package was made with (PF_VERSION in include/pathfinder/core.h)."""
__version__ = "0.1.0"
