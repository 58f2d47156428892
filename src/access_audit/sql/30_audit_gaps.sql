-- Audit gaps (issue 7): windows in which a system's audit log, or one user's rows on one system,
-- fell far below their usual volume: the hole an insider who deletes their own trail leaves.
-- A gap with no user is a whole system's; its evidence (rows seen, usual volume, staff on
-- shift) is in the reason.
CREATE VIEW audit_gaps AS
SELECT f.day, f.flag_id, f.subject_id AS system, f.user_id,
       f.first_access_at AS gap_from, f.last_access_at AS gap_to, f.event_count AS rows_seen,
       f.score, f.alert, f.reasons[1].text AS reason, f.note,
       coalesce(r.status, 'open') AS status, r.outcome
FROM flags f
LEFT JOIN reviews_current r USING (flag_id)
WHERE f.kind = 'audit_gap'
ORDER BY f.day DESC, f.score DESC, f.flag_id;

-- Audit rows per system and UTC hour: the volume audit gaps are judged on.
CREATE VIEW hourly_access_volume AS
SELECT system, time_bucket(INTERVAL 1 HOUR, occurred_at) AS hour, count(*) AS events,
       count(DISTINCT user_id) AS users
FROM access_events
GROUP BY ALL
ORDER BY system, hour;
