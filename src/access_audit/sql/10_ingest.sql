-- Analysts' views over the ingest stage. Loaded in file-name order after the base views
-- (one per stored table, named as the table: access_events, staff, persons, incidents,
-- incident_persons, assignments, calls, shifts, associations, training, loaded_files,
-- rejected_rows) and the run log (runs).

-- Rejected rows per drop, table and reason: what to chase with the force's data team.
CREATE VIEW rejected_summary AS
SELECT drop_id, table_name, reason, "column", count(*) AS rows
FROM rejected_rows
GROUP BY ALL
ORDER BY drop_id, table_name, rows DESC;

-- Access events per UTC day and system, with how many users made them.
CREATE VIEW daily_access_volume AS
SELECT day, system, count(*) AS events, count(DISTINCT user_id) AS users
FROM access_events
GROUP BY ALL
ORDER BY day, system;
