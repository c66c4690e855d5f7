"""The simulator's parts: what a run records (records), the figures derived from it
(figures), the report of a run (report) and its text (text), the run itself (run) and
the router a scenario run starts (router_process). `contact_router_tools.simulate` is
the command on top."""
