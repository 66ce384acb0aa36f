"""meditation: turn a written meditation into a finished audio track.

The package reads as its pipeline: ``script`` → ``segments`` → ``speech`` →
``timeline`` → ``soundscape`` → ``mix`` → ``master`` → ``export``; ``render``
composes them and ``cli`` and ``batch`` drive it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
