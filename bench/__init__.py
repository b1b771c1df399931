"""`make bench`: Pagely against bare reference apps, in one run, on this machine."""

from pathlib import Path

# The repository: where the servers run and where results are written.
REPOSITORY = Path(__file__).resolve().parent.parent
