-- Analysts' views over explanations, flags and reviews. Base views (one per stored table):
-- explanations, indicators, flags, flag_events, reviews; and flag_views (who was shown which
-- flags, from the CLI's audit log). Explanations and indicators exist for scored days only.

-- Each flag's latest decision (review history is append-only; the latest row is the state).
CREATE VIEW reviews_current AS
SELECT flag_id,
       arg_max(status, reviewed_at) AS status,
       arg_max(outcome, reviewed_at) AS outcome,
       arg_max(reviewer, reviewed_at) AS reviewer,
       max(reviewed_at) AS reviewed_at,
       count(*) AS decisions
FROM reviews
GROUP BY flag_id;

-- The review queue: every flag with its state, best first within a day.
CREATE VIEW flag_queue AS
SELECT f.day, f.flag_id, f.kind, f.user_id, f.subject_type, f.subject_id, f.person_id,
       f.score, f.rule_score, f.alert, f.first_access_at, f.last_access_at, f.event_count,
       f.unexplained_count, f.note, f.model_version, f.rules_version, f.cleared_at,
       coalesce(r.status, 'open') AS status, r.outcome, r.reviewer, r.reviewed_at,
       list_transform(f.reasons, lambda x: x.text) AS reasons
FROM flags f
LEFT JOIN reviews_current r USING (flag_id)
ORDER BY f.day DESC, f.score DESC, f.rule_score DESC;

-- Every access with whether (and how) it is explained.
CREATE VIEW access_explained AS
SELECT e.day, e.system, e.event_id, e.occurred_at, e.user_id, e.action, e.record_type,
       e.record_id, e.reason_code, e.justification,
       x.kinds IS NOT NULL AS explained, x.kinds, x.details
FROM access_events e
LEFT JOIN (
    SELECT system, event_id, list(DISTINCT kind ORDER BY kind) AS kinds,
           list(detail ORDER BY detail) AS details
    FROM explanations
    GROUP BY ALL
) x USING (system, event_id);

-- Accesses of a record that nothing explains (searches that opened no record are left out).
CREATE VIEW unexplained_accesses AS
SELECT * EXCLUDE (explained, kinds, details)
FROM access_explained
WHERE NOT explained AND record_id IS NOT NULL;

-- Each flag's accesses, with their explanations.
CREATE VIEW flag_accesses AS
SELECT fe.flag_id, a.*
FROM flag_events fe
JOIN access_explained a USING (system, event_id, day);

-- How often each indicator fired per day, and how many of those accesses were unexplained.
CREATE VIEW indicator_daily AS
SELECT i.day, i.code, count(*) AS accesses, sum(i.points) AS points
FROM indicators i
GROUP BY ALL
ORDER BY i.day, accesses DESC;
