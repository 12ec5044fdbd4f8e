"""The trust root: the site's Ed25519 key and what it signs.

`signing.py` signs and checks policies, manifests and the access tokens that let a
machine download content (each token names its purpose and its expiry); `bearer.py`
reads an `Authorization: Bearer` header; `tls.py` holds the TLS set-up every role shares
(server certificates, trusted CAs, the line that says a certificate was refused). May
import the domain only.
"""
