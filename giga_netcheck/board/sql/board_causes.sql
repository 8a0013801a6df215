-- Per board: causes by frequency (runs that claimed each cause, and how many schools).
-- Read from the per-school counts (`school_causes`, a few rows per school) rather than from
-- every cause row again; a school is (board, school_id), as in `school_summary`.
WITH totals AS (
  SELECT board, SUM(runs) AS board_runs, COUNT(*) AS board_schools FROM school_summary GROUP BY board
)
SELECT
  s.board,
  c.cause_id,
  SUM(c.runs) AS runs,
  COUNT(*) AS schools,
  CAST(SUM(c.runs) AS DOUBLE) / MAX(t.board_runs) AS share_of_runs,
  CAST(COUNT(*) AS DOUBLE) / MAX(t.board_schools) AS share_of_schools
FROM school_causes c
JOIN school_summary s ON s.board = c.board AND s.school_id = c.school_id
JOIN totals t ON t.board = s.board
GROUP BY s.board, c.cause_id
