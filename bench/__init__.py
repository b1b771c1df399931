"""`make bench`: Pagely against bare reference apps, in one run, on this machine."""
