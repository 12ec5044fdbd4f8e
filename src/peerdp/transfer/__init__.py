"""Downloading a package version from distribution points: `download.py` picks sources in
the order the management point gave, resumes with ranges, fails over and verifies every
byte before it enters an object store; `fastpath.py` reads a body straight from the
socket and writes and hashes it in two threads; `throttle.py` is the token bucket that
caps one download's bandwidth.

May import the domain and `peerdp.content`; progress display is passed in by the caller.
"""
