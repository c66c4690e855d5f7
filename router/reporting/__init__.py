"""Reporting: what ReportingService serves, as plain values.

`reporting.Reporting` is the one object the servicer calls: it reads through the
store's Reports and hands staffing arithmetic and forecast fits to a worker process
(`workers`; the fit itself is `forecast_model`, numpy and statsmodels, loaded there
only). The rest is pure (values in, values out, no clock, database or network):
`contacts` (service level per row, goals), `agents` (the agent report), `plan` (staffing
plans: history to forecast, concurrency, shrinkage, input bounds), `staffing` (Erlang
C), `erlang_a`, `forecasting` (the local grid, bounds, WAPE and bias), `intervals`,
`alarm`, `report` (ratios).
"""
