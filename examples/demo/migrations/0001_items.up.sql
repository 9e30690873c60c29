-- the demo's table, as examples/demo/app.py creates it today (it seeds it itself)
CREATE TABLE IF NOT EXISTS demo.items (id serial PRIMARY KEY, name text NOT NULL, points integer NOT NULL DEFAULT 0);
