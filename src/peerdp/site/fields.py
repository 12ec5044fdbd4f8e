"""Field types the admin API and the management point share: names that show what they
are, and machine addresses. A bad value answers 422 naming the field."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from peerdp.domain.boundaries import check_machine_address
from peerdp.domain.visible_names import check_visible

# A name a person reads in a list: no control, format (bidirectional, zero-width) or
# line-separator characters, which could make it look like another.
VisibleName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_visible)]
# A machine's name also becomes part of paths and status lines: no slashes either.
MachineName = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=r"^[^/\\]+$"),
    AfterValidator(check_visible),
]
# An Active Directory site's name, as a machine reports it or a boundary names it.
AdSite = Annotated[
    str, Field(max_length=200), AfterValidator(lambda v: check_visible(v, "AD site name"))
]
# One IPv4 or IPv6 address, as a machine reports it or an administrator enters it.
IpAddress = Annotated[str, Field(max_length=100), AfterValidator(check_machine_address)]
IpAddresses = Annotated[list[IpAddress], Field(max_length=64)]
