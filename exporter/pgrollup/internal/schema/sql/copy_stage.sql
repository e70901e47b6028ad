COPY pgrollup_stage (res, series_id, time, value) FROM STDIN (FORMAT binary)
