-- Per board: causes by frequency (runs that claimed each cause, and how many schools).
-- (a cause appears at most once per run in `causes`, so COUNT(*) counts runs)
WITH totals AS (
  SELECT board, COUNT(*) AS board_runs, COUNT(DISTINCT school_id) AS board_schools FROM runs GROUP BY board
)
SELECT
  c.board,
  c.cause_id,
  COUNT(*) AS runs,
  COUNT(DISTINCT c.school_id) AS schools,
  CAST(COUNT(*) AS DOUBLE) / MAX(t.board_runs) AS share_of_runs,
  CAST(COUNT(DISTINCT c.school_id) AS DOUBLE) / MAX(t.board_schools) AS share_of_schools
FROM causes c
JOIN totals t ON t.board = c.board
GROUP BY c.board, c.cause_id
