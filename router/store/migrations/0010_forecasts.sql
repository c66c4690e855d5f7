-- Forecasts as they were made (ReportingService.GetForecast), so that accuracy is
-- measured against what was forecast, not against a new fit of today's history.

CREATE TABLE forecasts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    made_at           timestamptz NOT NULL,
    channel           text NOT NULL CHECK (channel IN ('phone', 'chat', 'email')),
    interval_seconds  integer NOT NULL CHECK (interval_seconds IN (900, 1800, 3600)),
    time_zone         text NOT NULL,
    -- The history learned from: [history_start, starts_at).
    history_start     timestamptz NOT NULL,
    -- The first forecast interval's start, which is also the end of the history.
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    level             double precision NOT NULL,
    model             text NOT NULL
);

CREATE INDEX forecasts_channel_idx ON forecasts (channel, interval_seconds, starts_at);

CREATE TABLE forecast_intervals (
    forecast_id     bigint NOT NULL REFERENCES forecasts (id) ON DELETE CASCADE,
    interval_start  timestamptz NOT NULL,
    contacts        double precision NOT NULL,
    contacts_lower  double precision NOT NULL,
    contacts_upper  double precision NOT NULL,
    aht_seconds     double precision NOT NULL,
    PRIMARY KEY (forecast_id, interval_start)
);

CREATE INDEX forecast_intervals_start_idx ON forecast_intervals (interval_start);
