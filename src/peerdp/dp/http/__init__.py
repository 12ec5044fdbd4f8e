"""The HTTP stack every distribution point serves content with.

``semantics`` is pure RFC 9110 (ranges, validators, preconditions); ``bodies`` opens
store files without following symlinks and reads them; ``response`` is the ASGI answer
that streams a body and the limiter of transfers in flight.
"""
