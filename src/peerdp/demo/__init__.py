"""`peerdp demo`: the seed's on-demand provisioning flow, end to end, on one machine."""
