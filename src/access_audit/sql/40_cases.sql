-- Cases (src/access_audit/review/cases.py defines the same grouping for the CLI; a test holds the
-- two equal). A case holds one user's flags on one subject, or one user's user-level (pattern)
-- flags, from the first such flag's day for case_settings.span_days days ([cases] span_days);
-- a later flag starts the next case. A flag belongs to a case if it is an alert, was one until a
-- late explanation cleared it, or has a decision. case_log holds assignments and decisions.

-- Every flag in a case, with its case id, the case's span and the flag's review state.
CREATE VIEW case_flags AS
WITH members AS (
    SELECT f.*, coalesce(r.status, 'open') AS status, r.outcome,
           min(f.day) OVER (PARTITION BY f.user_id, f.subject_type, f.subject_id) AS anchor
    FROM flags f
    LEFT JOIN reviews_current r USING (flag_id)
    WHERE f.alert OR f.cleared_at IS NOT NULL OR r.flag_id IS NOT NULL
), windowed AS (
    SELECT m.*,
           m.anchor + CAST(((m.day - m.anchor) // s.span_days) * s.span_days AS INTEGER)
               AS window_start,
           s.span_days
    FROM members m, case_settings s
)
SELECT 'C' || strftime(window_start, '%Y%m%d') || '-'
           || coalesce(replace(replace(user_id, '%', '%25'), '-', '%2D'), '') || '-'
           || CASE WHEN subject_type IS NULL AND subject_id IS NULL THEN 'user'
                   ELSE coalesce(replace(replace(subject_type, '%', '%25'), '-', '%2D'), '')
                        || ':'
                        || coalesce(replace(replace(subject_id, '%', '%25'), '-', '%2D'), '')
              END AS case_id,
       CAST(window_start AS DATE) AS window_start,
       CAST(window_start + span_days - 1 AS DATE) AS window_end,
       flag_id, kind, user_id, subject_type, subject_id, person_id, day, score, rule_score, alert,
       first_access_at, last_access_at, status, outcome, note, cleared_at,
       list_transform(reasons, lambda x: x.text) AS reasons
FROM windowed
ORDER BY case_id, day, flag_id;

-- One row per case: its flags, its latest assignment and decision, and its status. A case closed
-- before a later flag joined it, or with a flag reopened by a flag review, is open again (reopened)
-- until that flag is closed too.
-- `overdue` compares with the session's current_date (the CLI uses [ingest] timezone's today).
CREATE VIEW cases AS
WITH grouped AS (
    SELECT case_id, any_value(user_id) AS user_id, any_value(subject_type) AS subject_type,
           any_value(subject_id) AS subject_id, min(window_start) AS window_start,
           min(window_end) AS window_end, count(*) AS flags,
           count(*) FILTER (WHERE alert) AS alerts,
           count(*) FILTER (WHERE status <> 'closed') AS open_flags,
           max(score) AS max_score, min(first_access_at) AS first_access_at,
           max(last_access_at) AS last_access_at, list(flag_id ORDER BY flag_id) AS flag_ids
    FROM case_flags
    GROUP BY case_id
), numbered AS (
    SELECT *, row_number() OVER () AS line FROM case_log
), assignment AS (
    SELECT case_id, arg_max(assignee, line) AS assignee, arg_max(due, line) AS due,
           arg_max(recorded_at, line) AS assigned_at
    FROM numbered WHERE action = 'assign' GROUP BY case_id
), decision AS (
    SELECT case_id, arg_max(status, line) AS decided_status, arg_max(outcome, line) AS outcome,
           arg_max(note, line) AS note, arg_max(flag_ids, line) AS decided_flags,
           arg_max(recorded_at, line) AS decided_at, arg_max(analyst, line) AS decided_by
    FROM numbered WHERE action = 'decision' GROUP BY case_id
), joined AS (
    SELECT g.*, a.assignee, a.due, a.assigned_at, d.decided_status, d.outcome, d.note,
           d.decided_at, d.decided_by,
           len(list_filter(g.flag_ids,
                           lambda x: NOT list_contains(coalesce(d.decided_flags, []), x)))
               AS undecided_flags
    FROM grouped g
    LEFT JOIN assignment a USING (case_id)
    LEFT JOIN decision d USING (case_id)
), stated AS (
    SELECT *,
           CASE WHEN decided_status IS NULL
                     OR (decided_status = 'closed' AND (undecided_flags > 0 OR open_flags > 0))
                THEN 'open'
                ELSE decided_status END AS status,
           coalesce(decided_status = 'closed' AND (undecided_flags > 0 OR open_flags > 0), false)
               AS reopened
    FROM joined
)
SELECT case_id, user_id, subject_type, subject_id, window_start, window_end, status, outcome,
       assignee, due, coalesce(due < current_date AND status <> 'closed', false) AS overdue,
       flags, alerts, open_flags, undecided_flags, reopened, max_score, first_access_at,
       last_access_at, flag_ids, assigned_at, decided_at, decided_by, note
FROM stated
ORDER BY status = 'closed', max_score DESC, case_id;
