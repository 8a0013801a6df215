-- Per board, ISO week and cause: runs that claimed the cause (recurring causes over the term).
-- (a cause appears at most once per run in `causes`, so COUNT(*) counts runs)
SELECT board, week, cause_id, COUNT(*) AS runs, COUNT(DISTINCT school_id) AS schools
FROM causes
GROUP BY board, week, cause_id
