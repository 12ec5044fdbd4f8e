"""What a DP serves to clients and branch DPs, counted for its `/metrics`.

With a branch DP's `peerdp_branch_pulled_bytes_total` (bytes over the WAN), these show
what a branch DP saves: the bytes it pulled once against the bytes it served on the LAN.
They are counted once per response (when its body is over, or it is refused), never per
chunk, so the sendfile path keeps its speed. Only a package version the DP holds gets
its own label: a refused request (no token, a wrong one, an unknown version) counts
under its status alone, so made-up URLs cannot grow the label set.
"""

from __future__ import annotations

from prometheus_client import Counter
from starlette.responses import Response

from peerdp.dp.http.response import ContentResponse

__all__ = ["REFUSED_REQUESTS", "SERVED_BYTES", "SERVED_REQUESTS", "count_answer", "count_refusal"]

SERVED_BYTES = Counter(
    "peerdp_dp_served_bytes",
    "Body bytes of package content (files and manifests) this DP sent to clients and branch DPs",
    ["package_id"],
)
SERVED_REQUESTS = Counter(
    "peerdp_dp_served_requests",
    "Requests for package content this DP answered (HEAD and GET), by package and status",
    ["package_id", "status"],
)
REFUSED_REQUESTS = Counter(
    "peerdp_dp_refused_requests",
    "Requests for package content refused before a held version was found, by status",
    ["status"],
)


def count_answer(package_id: str, response: Response) -> Response:
    """Count an answer about a held package version (when its body is over)."""
    if isinstance(response, ContentResponse):

        def done(status: int, sent: int) -> None:
            SERVED_REQUESTS.labels(package_id, str(status)).inc()
            if sent:
                SERVED_BYTES.labels(package_id).inc(sent)

        response.on_done = done
    else:
        SERVED_REQUESTS.labels(package_id, str(response.status_code)).inc()
    return response


def count_refusal(response: Response) -> Response:
    """Count a refused request (401, 403, 404)."""
    REFUSED_REQUESTS.labels(str(response.status_code)).inc()
    return response
