-- Schools broken down by their context (region, ISP, line type, contract, IPv4 method,
-- connection model): per board, and over every board (board = '*').
WITH long AS (
  SELECT board, 'region' AS field, COALESCE(region, '-') AS value, mext_compliant, compliance_down_mbps, mext_ratio, lesson_rtt_internet_ms_p50, failed_runs, runs FROM school_summary
  UNION ALL SELECT board, 'isp', COALESCE(isp, '-'), mext_compliant, compliance_down_mbps, mext_ratio, lesson_rtt_internet_ms_p50, failed_runs, runs FROM school_summary
  UNION ALL SELECT board, 'line_type', COALESCE(line_type, '-'), mext_compliant, compliance_down_mbps, mext_ratio, lesson_rtt_internet_ms_p50, failed_runs, runs FROM school_summary
  UNION ALL SELECT board, 'contract', COALESCE(contract, '-'), mext_compliant, compliance_down_mbps, mext_ratio, lesson_rtt_internet_ms_p50, failed_runs, runs FROM school_summary
  UNION ALL SELECT board, 'ipv4_method', COALESCE(ipv4_method, '-'), mext_compliant, compliance_down_mbps, mext_ratio, lesson_rtt_internet_ms_p50, failed_runs, runs FROM school_summary
  UNION ALL SELECT board, 'connection_model', COALESCE(connection_model, '-'), mext_compliant, compliance_down_mbps, mext_ratio, lesson_rtt_internet_ms_p50, failed_runs, runs FROM school_summary
),
scoped AS (
  SELECT board, field, value, mext_compliant, compliance_down_mbps, mext_ratio, lesson_rtt_internet_ms_p50, failed_runs, runs FROM long
  UNION ALL
  SELECT '*', field, value, mext_compliant, compliance_down_mbps, mext_ratio, lesson_rtt_internet_ms_p50, failed_runs, runs FROM long
)
SELECT
  board,
  field,
  value,
  COUNT(*) AS schools,
  SUM(CASE WHEN mext_compliant IS NOT NULL THEN 1 ELSE 0 END) AS schools_assessed,
  SUM(CASE WHEN mext_compliant = 1 THEN 1 ELSE 0 END) AS schools_compliant,
  CASE WHEN SUM(CASE WHEN mext_compliant IS NOT NULL THEN 1 ELSE 0 END) = 0 THEN NULL
       ELSE CAST(SUM(CASE WHEN mext_compliant = 1 THEN 1 ELSE 0 END) AS DOUBLE)
            / SUM(CASE WHEN mext_compliant IS NOT NULL THEN 1 ELSE 0 END) END AS share_compliant,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY compliance_down_mbps) AS school_down_mbps_p50,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY mext_ratio) AS mext_ratio_p50,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY lesson_rtt_internet_ms_p50) AS lesson_rtt_internet_ms_p50,
  CAST(SUM(failed_runs) AS DOUBLE) / SUM(runs) AS failed_share
FROM scoped
GROUP BY board, field, value
