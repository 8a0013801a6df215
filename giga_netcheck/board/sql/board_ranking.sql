-- Per board: schools ranked worst first (furthest below the MEXT recommendation for their
-- size, then slowest at lesson time, then most failed runs).
SELECT
  board,
  ROW_NUMBER() OVER (
    PARTITION BY board
    ORDER BY mext_ratio ASC NULLS LAST, compliance_down_mbps ASC NULLS LAST, failed_share DESC NULLS LAST, school_id ASC NULLS LAST
  ) AS worst_rank,
  school_id, school_name, students, mext_mbps, compliance_down_mbps, mext_ratio, mext_compliant,
  lesson_down_mbps_p50, lesson_rtt_internet_ms_p50, lesson_dns_p50_ms, worst_down_mbps,
  failed_share, runs, latest_status, latest_at, top_cause,
  region, isp, line_type, contract, ipv4_method, connection_model
FROM school_summary
