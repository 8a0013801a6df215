-- Per board and ISO week (week = the Monday, local to the school): how the term is going.
SELECT
  board,
  week,
  COUNT(*) AS runs,
  COUNT(DISTINCT school_id) AS schools,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY down_mbps) AS down_mbps_p50,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN lesson THEN down_mbps END) AS lesson_down_mbps_p50,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN lesson THEN rtt_internet_ms END) AS lesson_rtt_internet_ms_p50,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY dns_p50_ms) AS dns_p50_ms,
  CAST(SUM(CASE WHEN status IN ('fail', 'no-connectivity', 'error') THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS failed_share,
  CASE WHEN SUM(CASE WHEN mext_ok IS NOT NULL THEN 1 ELSE 0 END) = 0 THEN NULL
       ELSE CAST(SUM(CASE WHEN mext_ok THEN 1 ELSE 0 END) AS DOUBLE)
            / SUM(CASE WHEN mext_ok IS NOT NULL THEN 1 ELSE 0 END) END AS mext_ok_share
FROM runs
GROUP BY board, week
