-- Planner statistics on the document fields that lists filter on. Their indexes are partial
-- (WHERE type = ...), and PostgreSQL takes no statistics from a partial index's expressions:
-- without these, `tags ? $1` was always guessed at 1 % of the rows, so a page of a tag that
-- most events carry was planned as a bitmap scan of every match plus a sort (50-66 ms at
-- 14,800 matches, growing with the table) instead of a walk of the startsAt index that stops
-- after 51 rows (0.2 ms). A tag that few events carry still gets the bitmap scan.
CREATE STATISTICS resources_tags ON ((doc -> 'tags')) FROM resources;
CREATE STATISTICS resources_starts ON ((doc -> 'startsAt')) FROM resources;
CREATE STATISTICS resources_ends ON ((doc -> 'endsAt')) FROM resources;
CREATE STATISTICS resources_location ON ((doc -> 'locationId')) FROM resources;
CREATE STATISTICS resources_name ON ((doc -> 'name')) FROM resources;

-- Statistics follow the table's growth sooner than the defaults (10 % of the rows changed)
-- where autovacuum runs; where it does not, the service analyzes (services/resource/statistics.py).
ALTER TABLE resources SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 500);
