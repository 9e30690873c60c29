-- the demo's table (v1), seeded with 20 items once
CREATE TABLE IF NOT EXISTS demo.items (id serial PRIMARY KEY, name text NOT NULL, points integer NOT NULL DEFAULT 0);
INSERT INTO demo.items (name, points)
  SELECT 'item ' || g, (g * 37) % 100 FROM generate_series(1, 20) AS g
  WHERE NOT EXISTS (SELECT 1 FROM demo.items);
