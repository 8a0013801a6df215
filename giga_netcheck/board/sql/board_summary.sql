-- Per board: schools, share compliant with the MEXT recommended bandwidth for their size
-- (against the national share of 2024), lesson-hour medians across schools, failed runs.
-- reference_figures: one row of reference figures (giga_netcheck/data/reference.yaml), which
-- board/batch.py registers on every connection (batch.register_reference).
SELECT
  board,
  COUNT(*) AS schools,
  SUM(runs) AS runs,
  SUM(CASE WHEN mext_compliant IS NOT NULL THEN 1 ELSE 0 END) AS schools_assessed,
  SUM(CASE WHEN mext_compliant = 1 THEN 1 ELSE 0 END) AS schools_compliant,
  CASE WHEN SUM(CASE WHEN mext_compliant IS NOT NULL THEN 1 ELSE 0 END) = 0 THEN NULL
       ELSE CAST(SUM(CASE WHEN mext_compliant = 1 THEN 1 ELSE 0 END) AS DOUBLE)
            / SUM(CASE WHEN mext_compliant IS NOT NULL THEN 1 ELSE 0 END) END AS share_compliant,
  (SELECT national_share_2024 FROM reference_figures) AS national_share_2024,  -- MEXT 2024: schools that met the recommended bandwidth
  percentile_cont(0.5) WITHIN GROUP (ORDER BY compliance_down_mbps) AS school_down_mbps_p50,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY mext_ratio) AS mext_ratio_p50,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY lesson_rtt_internet_ms_p50) AS lesson_rtt_internet_ms_p50,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY lesson_dns_p50_ms) AS lesson_dns_p50_ms,
  CAST(SUM(failed_runs) AS DOUBLE) / SUM(runs) AS failed_share
FROM school_summary
GROUP BY board
