"""contact-router: omni-channel contact routing service.

gRPC core reads two settings from the environment once, when grpc is first imported.
Every way into the router imports this package before grpc (the `contact-router`
command and `python -m router` live in it; tests/__init__.py imports it), so they are
set here, each only where the operator has not set it:

- GRPC_VERBOSITY=ERROR: gRPC core otherwise writes lines of its own to stderr at INFO
  and above (`I1204 20:40:53 ... fork_posix.cc:71] Other threads are currently calling
  into gRPC, skipping fork() handlers`), which are not the router's JSON. Its errors
  still show.
- GRPC_ENABLE_FORK_SUPPORT=false: gRPC's fork handlers crash the child of a fork made
  while gRPC's threads are busy (SIGSEGV before the child execs; 119 of 300 forks in
  one run here, grpcio 1.85). The embedded PostgreSQL runs pg_ctl as a system user of
  its own, which Python's subprocess can only do with a plain fork, so a start in a
  process already serving gRPC (a router restarted by its host program, a test
  session) failed at random. The router never uses gRPC in a forked child: its report
  workers are spawned.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
