-- Judges the newly complete minutes of every metric and keeps the anomalous ones; returns how many it kept.
SELECT {{.Schema}}.judge_anomalies(now())
