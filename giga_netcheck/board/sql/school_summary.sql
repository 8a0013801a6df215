-- Per school: latest run, worst values, lesson-hour medians, MEXT compliance for its size,
-- and its most frequent cause. A school is (board, school_id): an id is unique within its board
-- only, so another board's runs under the same id never move this school's row.
-- Inputs: the view `runs` and the table `school_causes`, which
-- runs first (docs/boards.md).
-- Portable SQL: percentile_cont ... WITHIN GROUP is SQL:2008 (DuckDB, Spark 3.3+, PostgreSQL);
-- the Trino dialect rewrites it to approx_percentile (batch.to_dialect).
WITH last_run AS (
  SELECT board, school_id, MAX(started_at) AS last_at FROM runs GROUP BY board, school_id
),
latest AS (
  -- the latest run per school: a join on MAX(started_at) is far cheaper than numbering every
  -- run; ROW_NUMBER only breaks ties between runs that started at the same second
  SELECT * FROM (
    SELECT r.board, r.school_id, r.school_name, r.region, r.isp, r.line_type, r.contract, r.ipv4_method,
           r.connection_model, r.students, r.mext_mbps, r.started_at, r.status, r.down_mbps, r.up_mbps,
           r.rtt_internet_ms, r.dns_p50_ms,
           ROW_NUMBER() OVER (PARTITION BY r.board, r.school_id ORDER BY r.run_id DESC NULLS LAST) AS rn
    FROM runs r
    JOIN last_run x ON x.board = r.board AND x.school_id = r.school_id AND r.started_at = x.last_at
  ) t
  WHERE rn = 1
),
agg AS (
  SELECT
    board,
    school_id,
    COUNT(*) AS runs,
    SUM(CASE WHEN lesson THEN 1 ELSE 0 END) AS lesson_runs,
    SUM(CASE WHEN status IN ('fail', 'no-connectivity', 'error') THEN 1 ELSE 0 END) AS failed_runs,
    MIN(started_at) AS first_run_at,
    MIN(down_mbps) AS worst_down_mbps,
    MIN(up_mbps) AS worst_up_mbps,
    MAX(rtt_gateway_ms) AS worst_rtt_gateway_ms,
    MAX(rtt_internet_ms) AS worst_rtt_internet_ms,
    MAX(loss_pct) AS worst_loss_pct,
    MAX(dns_p50_ms) AS worst_dns_p50_ms,
    MIN(knee_mbps) AS worst_knee_mbps,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY down_mbps) AS down_mbps_p50,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN lesson THEN down_mbps END) AS lesson_down_mbps_p50,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN lesson THEN up_mbps END) AS lesson_up_mbps_p50,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN lesson THEN rtt_gateway_ms END) AS lesson_rtt_gateway_ms_p50,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN lesson THEN rtt_internet_ms END) AS lesson_rtt_internet_ms_p50,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN lesson THEN dns_p50_ms END) AS lesson_dns_p50_ms,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN lesson THEN knee_mbps END) AS lesson_knee_mbps_p50
  FROM runs
  GROUP BY board, school_id
),
measured AS (
  SELECT a.*, COALESCE(a.lesson_down_mbps_p50, a.down_mbps_p50) AS compliance_down_mbps
  FROM agg a
)
SELECT
  l.board, l.school_id, l.school_name, l.region, l.isp, l.line_type, l.contract, l.ipv4_method,
  l.connection_model, l.students, l.mext_mbps,
  m.runs, m.lesson_runs, m.failed_runs,
  CAST(m.failed_runs AS DOUBLE) / m.runs AS failed_share,
  m.first_run_at,
  l.started_at AS latest_at, l.status AS latest_status, l.down_mbps AS latest_down_mbps,
  l.up_mbps AS latest_up_mbps, l.rtt_internet_ms AS latest_rtt_internet_ms, l.dns_p50_ms AS latest_dns_p50_ms,
  m.worst_down_mbps, m.worst_up_mbps, m.worst_rtt_gateway_ms, m.worst_rtt_internet_ms, m.worst_loss_pct,
  m.worst_dns_p50_ms, m.worst_knee_mbps,
  m.down_mbps_p50, m.lesson_down_mbps_p50, m.lesson_up_mbps_p50, m.lesson_rtt_gateway_ms_p50,
  m.lesson_rtt_internet_ms_p50, m.lesson_dns_p50_ms, m.lesson_knee_mbps_p50,
  m.compliance_down_mbps,
  CASE WHEN l.mext_mbps IS NULL OR l.mext_mbps <= 0 OR m.compliance_down_mbps IS NULL THEN NULL
       ELSE m.compliance_down_mbps / l.mext_mbps END AS mext_ratio,
  CASE WHEN l.mext_mbps IS NULL OR m.compliance_down_mbps IS NULL THEN NULL
       WHEN m.compliance_down_mbps >= l.mext_mbps THEN 1 ELSE 0 END AS mext_compliant,
  c.cause_id AS top_cause,
  c.runs AS top_cause_runs
FROM latest l
JOIN measured m ON m.board = l.board AND m.school_id = l.school_id
LEFT JOIN school_causes c ON c.board = l.board AND c.school_id = l.school_id AND c.cause_rank = 1
