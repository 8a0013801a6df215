-- Per school (board, school_id: a school id is unique within its board only): its causes by
-- frequency (runs that claimed each), most frequent first.
-- (a cause appears at most once per run in `causes`, so COUNT(*) counts runs)
WITH per_school AS (
  SELECT board, school_id, COUNT(*) AS school_runs FROM runs GROUP BY board, school_id
),
counted AS (
  SELECT board, school_id, cause_id, COUNT(*) AS runs
  FROM causes
  GROUP BY board, school_id, cause_id
)
SELECT
  c.board,
  c.school_id,
  c.cause_id,
  c.runs,
  CAST(c.runs AS DOUBLE) / p.school_runs AS share_of_runs,
  ROW_NUMBER() OVER (PARTITION BY c.board, c.school_id ORDER BY c.runs DESC NULLS LAST, c.cause_id ASC NULLS LAST) AS cause_rank
FROM counted c
JOIN per_school p ON p.board = c.board AND p.school_id = c.school_id
