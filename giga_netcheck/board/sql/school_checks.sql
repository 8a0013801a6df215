-- Per school (board, school_id) and check id: how often each check passed (not-measured is left out of the rate).
SELECT
  board,
  school_id,
  check_id,
  COUNT(*) AS checks,
  SUM(CASE WHEN status = 'pass' THEN 1 ELSE 0 END) AS passed,
  SUM(CASE WHEN status = 'warn' THEN 1 ELSE 0 END) AS warned,
  SUM(CASE WHEN status = 'fail' THEN 1 ELSE 0 END) AS failed,
  SUM(CASE WHEN status = 'not-measured' THEN 1 ELSE 0 END) AS not_measured,
  CASE WHEN SUM(CASE WHEN status <> 'not-measured' THEN 1 ELSE 0 END) = 0 THEN NULL
       ELSE CAST(SUM(CASE WHEN status = 'pass' THEN 1 ELSE 0 END) AS DOUBLE)
            / SUM(CASE WHEN status <> 'not-measured' THEN 1 ELSE 0 END) END AS pass_rate
FROM checks
GROUP BY board, school_id, check_id
