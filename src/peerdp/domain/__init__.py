"""The pure ground floor: peerdp's rules and vocabularies, with no I/O.

- `location/`: the content-location and on-demand provisioning rule, the one rule the
  management point, `peerdp explain` and the benchmarks all call;
- `boundaries.py`: boundaries (subnets, address ranges, AD sites) and the sorted index
  that finds a client's boundaries by bisection;
- `dp_states.py`: the seven states of a package on a DP and their transitions;
- `timestamps.py`, `backoff.py`: the one RFC 3339 / HTTP-date reader and writer, and the
  capped doubling every retry loop waits by, with its random stretch (`jittered`);
- `policy_polling.py`: how clients fetch policy (long-poll, or every interval plus a
  random delay).

Imports the standard library only: nothing from peerdp outside this package.
"""
