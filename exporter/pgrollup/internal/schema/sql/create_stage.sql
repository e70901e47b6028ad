-- The staging table a flush copies its rows into, created once per connection.
CREATE TEMP TABLE IF NOT EXISTS pgrollup_stage (
    res       smallint         NOT NULL,
    series_id bigint           NOT NULL,
    time      timestamptz      NOT NULL,
    value     double precision NOT NULL
) ON COMMIT DELETE ROWS
